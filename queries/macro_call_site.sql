-- Macro: a call site written as the kernel writes it: "file:line [module] func:name".
-- Macros are created in file-name order; group_key uses call_site and dir_prefix.
create or replace macro call_site(file, line, module, function) as
file || ':' || line || coalesce(' [' || module || ']', '') || ' func:' || function
