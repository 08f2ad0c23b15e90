# The fuzzing tier's own database (tests/fuzz): schemathesis drives a second
# connector on emboux_fuzz, never on the mail DB, so it cannot touch real data.
# Same roles as the mail DB (the connector's role owns it); the fuzz fixture
# empties and migrates it at every run (as its owner), so this only makes sure
# it exists and says where it is (FUZZ_MAILDB_DSN).

stack_fuzz_up() {
    local db=emboux_fuzz pw
    [ "$db" != "$(env_get MAILDB_NAME)" ] || die "the fuzz database must not be the mail DB"
    pw=$(env_get MAILDB_PASSWORD)
    pg_ensure_db "$db" emboux
    pg_admin -d "$db" -c "REVOKE ALL ON DATABASE \"$db\" FROM PUBLIC;
        GRANT CONNECT ON DATABASE \"$db\" TO emboux;" >/dev/null
    env_set FUZZ_MAILDB_NAME "$db"
    env_set FUZZ_MAILDB_DSN "postgresql://emboux:$pw@$PG_HOST:$PG_PORT/$db"
}

stack_fuzz_down() { :; }   # kept: it holds nothing but what the next run replaces
