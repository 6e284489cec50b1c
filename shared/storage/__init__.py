"""Azure Table and Blob storage adapters: connections, one module per table family, the
alert ledger and the report read model."""
