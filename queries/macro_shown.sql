-- Macro: a signed statistic as printf should show it to digits places: itself, or 0.0 where it
-- rounds to zero. DuckDB's printf writes -0.0 for -0.01 (and -0.00 for -0.001); the Spark port
-- rounds with bround first and writes 0.0, and a reader sees no sign in a zero.
create or replace macro shown(x, digits) as
case when round(x, digits) = 0 then 0.0 else x end
