-- Limit a connection to reading the store's own files, for SQL from the user (allocsnap sql
-- without --unsafe, docs/commands.md): no other file can be read, written or attached, no
-- extension installed or loaded, and the settings cannot be changed back.
-- $paths  VARCHAR[]  the store's files the views read
set allowed_paths = $paths;
set enable_external_access = false;
set autoinstall_known_extensions = false;
set autoload_known_extensions = false;
set lock_configuration = true;
