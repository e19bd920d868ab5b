-- Macro: the key a row is grouped under for --by tag|function|file|module|dir[:N].
-- "tag" is the call site as the kernel prints it; "dir" keeps the first depth directories.
-- "host" is not a call site's: every site gets '' and the window queries, which know each
-- snapshot's host, put the host in its place.
create or replace macro group_key(by_name, depth, file, line, module, function) as
case by_name
    when 'function' then function
    when 'file' then file
    when 'module' then coalesce(module, '(built-in)')
    when 'dir' then dir_prefix(file, depth)
    when 'host' then ''
    else call_site(file, line, module, function)
end
