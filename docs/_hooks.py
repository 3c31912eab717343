"""MkDocs hooks: the pages generated from the code, so that the site has one source for each fact.

- ``index.md`` is README.md and ``changelog.md`` is CHANGELOG.md (links into ``docs/`` rewritten);
- ``reference/spec.md`` lists every spec field from the pydantic models in ``dltoolkit/spec.py`` (type,
  default, allowed values, and the comment the field carries in the source);
- ``reference/cli.md`` lists every command and option from ``dltoolkit.cli.build_parser``;
- the notebooks in ``notebooks/`` are added as pages (rendered by mkdocs-jupyter, not executed).
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
import types
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def on_files(files, config):
    from mkdocs.structure.files import File

    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        files.append(File.generated(config, f"notebooks/{notebook.name}", abs_src_path=str(notebook)))
    return files


def on_page_markdown(markdown, page, config, files):
    src = page.file.src_uri
    if src == "index.md":
        return _from_root("README.md")
    if src == "changelog.md":
        return _from_root("CHANGELOG.md")
    if "<!-- spec-reference -->" in markdown:
        return markdown.replace("<!-- spec-reference -->", spec_reference())
    if "<!-- cli-reference -->" in markdown:
        return markdown.replace("<!-- cli-reference -->", cli_reference())
    return markdown


def _from_root(name: str) -> str:
    text = (ROOT / name).read_text()
    text = re.sub(r"\]\(docs/", "](", text)  # docs/images/x.png -> images/x.png, from docs/index.md
    # other repository files (binder/, benchmarks/, a notebook folder) are not site pages: link to the folder
    text = re.sub(
        r"\]\((?!https?:|#|images/|notebooks/[^)]+\.ipynb)([^)]+)\)",
        r"](https://github.com/dltoolkit/dltoolkit/tree/HEAD/\1)",
        text,
    )
    return text


# ---------------------------------------------------------------------- the spec
def spec_reference() -> str:
    from pydantic import BaseModel

    from dltoolkit.spec import Spec

    out: list[str] = []
    seen: set[type] = set()

    def section(model: type[BaseModel], path: str) -> None:
        if model in seen and path != "":
            out.append(f"## `{path}`\n\nThe same fields as `{_first_path[model]}`.\n")
            return
        seen.add(model)
        _first_path.setdefault(model, path)
        comments = _field_comments(model)
        doc = inspect.cleandoc(model.__dict__.get("__doc__") or "")  # its own, not BaseModel's
        title = f"`{path}`" if path else "The spec (top level)"
        out.append(f"## {title}\n")
        if doc and not doc.startswith(model.__name__ + "("):
            out.append(doc.split("\n\n")[0] + "\n")
        out.append("| field | type | default | meaning |\n| --- | --- | --- | --- |")
        nested: list[tuple[type[BaseModel], str]] = []
        for name, field in model.model_fields.items():
            key = field.alias or name
            sub = _model_in(field.annotation)
            full = f"{path}.{key}" if path else key
            container = _container(field.annotation)
            full += {"dict": ".<name>", "list": "[i]"}.get(container, "")
            meaning = comments.get(name, "") or (f"see [`{full}`](#{_anchor(full)}) below" if sub else "")
            out.append(
                f"| `{key}` | {_type_text(field.annotation)} | {_default_text(field)} | {_escape(meaning)} |"
            )
            if sub is not None:
                nested.append((sub, full))
        out.append("")
        for sub, full in nested:
            section(sub, full)

    _first_path: dict[type, str] = {}
    section(Spec, "")
    return "\n".join(out)


def _anchor(title: str) -> str:
    """The id MkDocs' toc extension gives the heading ``## `title` ``."""
    return re.sub(r"[^\w\- ]", "", title).strip().lower().replace(" ", "-")


def _container(annotation) -> str:
    for candidate in [annotation, *typing.get_args(annotation)]:
        origin = typing.get_origin(candidate)
        if origin in (dict, list):
            return origin.__name__
    return ""


def _model_in(annotation) -> type | None:
    from pydantic import BaseModel

    candidates = [annotation, *typing.get_args(annotation)]
    for c in candidates:
        if isinstance(c, type) and issubclass(c, BaseModel):
            return c
        for inner in typing.get_args(c):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
    return None


def _type_text(annotation) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(
            f"`{v!r}`" if not isinstance(v, str) else f"`{v}`" for v in typing.get_args(annotation)
        )
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_text(a) for a in typing.get_args(annotation))
    if origin is typing.Annotated:
        return _type_text(typing.get_args(annotation)[0])
    if annotation is type(None):
        return "`null`"
    if origin is not None:
        args = ", ".join(_type_text(a).strip("`") for a in typing.get_args(annotation))
        return f"`{getattr(origin, '__name__', str(origin))}[{args}]`"
    return f"`{getattr(annotation, '__name__', str(annotation))}`"


def _default_text(field) -> str:
    from pydantic import BaseModel
    from pydantic_core import PydanticUndefined

    if field.default_factory is not None:
        try:
            value = field.default_factory()
        except TypeError:  # a factory that takes the validated data
            return "(computed)"
        return "(the defaults below)" if isinstance(value, BaseModel) else f"`{value!r}`"
    if field.default is PydanticUndefined:
        return "**required**"
    return f"`{field.default!r}`" if not isinstance(field.default, str) else f'`"{field.default}"`'


def _field_comments(model) -> dict[str, str]:
    """``name: type = default  # comment`` lines of the class body, and comment lines just above a field."""
    try:
        lines = inspect.getsource(model).splitlines()
    except (OSError, TypeError):
        return {}
    comments: dict[str, str] = {}
    above: list[str] = []
    for line in lines[1:]:
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("# ").rstrip())
            continue
        m = re.match(r"^\s{4}(\w+)\s*:\s*[^#]+?(?:#\s*(.*))?$", line)
        if m and not stripped.startswith(("def ", "@", "return", "class ")):
            text = " ".join(part for part in [*above, m.group(2) or ""] if part)
            if text:
                comments[m.group(1)] = text
        above = []
    return comments


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;")


# ---------------------------------------------------------------------- the command line
def cli_reference() -> str:
    from dltoolkit.cli import build_parser

    parser = build_parser()
    out = ["```text", _help(parser, "dltoolkit"), "```", ""]
    for action in parser._actions:  # argparse keeps its subcommands here; it has no public accessor
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                out += [
                    f"## `dltoolkit {name}`",
                    "",
                    helps.get(name) or "",
                    "",
                    "```text",
                    _help(sub, f"dltoolkit {name}"),
                    "```",
                    "",
                ]
    return "\n".join(out)


def _help(parser: argparse.ArgumentParser, prog: str) -> str:
    parser.prog = prog
    formatter = argparse.HelpFormatter(prog, width=100)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    formatter.add_text(parser.description)
    for group in parser._action_groups:
        formatter.start_section(group.title)
        formatter.add_arguments(group._group_actions)
        formatter.end_section()
    return formatter.format_help().rstrip()
