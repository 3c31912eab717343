"""Table files: a Parquet file, a folder or a glob of Parquet/CSV shards, streamed when large.

* :mod:`~dltoolkit.data.tables.source`: which files, their schema, row counts and read units
  (Parquet row groups, CSV files), checked before anything is trained;
* :mod:`~dltoolkit.data.tables.fit`: the preprocessing statistics fitted on the training rows in
  one streaming pass (an exact median in a few more passes), equal to the in-memory fit's;
* :mod:`~dltoolkit.data.tables.stream`: the splits read and transformed in ``DataLoader`` worker
  processes, batch by batch, sharded over the read units;
* :mod:`~dltoolkit.data.tables.prepare`: the splits, in memory (under ``data.in_memory_mb``) or streamed;
* :mod:`~dltoolkit.data.tables.samples`: a table written as Parquet shards (the recipe's data).

pyarrow reads the files; nothing here imports it until a table source is used.
"""
