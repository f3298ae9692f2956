#!/usr/bin/env bash
# Start or stop the Debian clickhouse-server (18.16) that the native-transport tests use.
#
#   THINKMETER_TEST_CLICKHOUSE_DIR=<state dir> tests/run_clickhouse_server.sh start|stop|url
#
# The state dir holds the server's own config (free TCP port, HTTP and interserver
# ports on free ports too, listening on 127.0.0.1 only), its data, logs and pid file,
# so nothing of the system's /etc/clickhouse-server or /var/lib/clickhouse is used.
# `start` writes the config on first use (later starts keep the port, so a test can
# stop and start the server and reconnect to the same URL) and waits until the server
# answers; `stop` stops it and waits until it has exited.
set -euo pipefail

dir="${THINKMETER_TEST_CLICKHOUSE_DIR:?set THINKMETER_TEST_CLICKHOUSE_DIR to a state directory}"
cmd="${1:?usage: $0 start|stop|url}"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

write_config() {
    mkdir -p "$dir/data/tmp" "$dir/data/user_files" "$dir/data/format_schemas" "$dir/log"
    local tcp http inter
    tcp=$(free_port); http=$(free_port); inter=$(free_port)
    while [ "$http" = "$tcp" ]; do http=$(free_port); done
    while [ "$inter" = "$tcp" ] || [ "$inter" = "$http" ]; do inter=$(free_port); done
    cat > "$dir/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>$dir/log/server.log</log>
        <errorlog>$dir/log/error.log</errorlog>
        <size>10M</size>
        <count>1</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>$tcp</tcp_port>
    <http_port>$http</http_port>
    <interserver_http_port>$inter</interserver_http_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <path>$dir/data/</path>
    <tmp_path>$dir/data/tmp/</tmp_path>
    <user_files_path>$dir/data/user_files/</user_files_path>
    <format_schema_path>$dir/data/format_schemas/</format_schema_path>
    <users_config>$dir/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
XML
    cat > "$dir/users.xml" <<'XML'
<?xml version="1.0"?>
<yandex>
    <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration><queries>0</queries><errors>0</errors>
                <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
XML
    echo "$tcp" > "$dir/port"
}

running() {
    [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null
}

answers() {
    clickhouse-client --host 127.0.0.1 --port "$(cat "$dir/port")" --query 'SELECT 1' >/dev/null 2>&1
}

case "$cmd" in
start)
    [ -f "$dir/config.xml" ] || write_config
    if running; then
        echo "clickhouse-server already running (pid $(cat "$dir/pid"))" >&2
        exit 0
    fi
    nohup clickhouse-server --config-file="$dir/config.xml" >>"$dir/log/stdout.log" 2>&1 </dev/null &
    echo $! > "$dir/pid"
    for _ in $(seq 1 300); do
        if answers; then
            exit 0
        fi
        if ! running; then
            echo "clickhouse-server exited during start-up; its log:" >&2
            tail -n 30 "$dir/log/stdout.log" "$dir/log/error.log" >&2 2>/dev/null || true
            exit 1
        fi
        sleep 0.1
    done
    echo "clickhouse-server did not answer within 30 s" >&2
    exit 1
    ;;
stop)
    if running; then
        pid=$(cat "$dir/pid")
        kill "$pid"
        for _ in $(seq 1 300); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$dir/pid"
    ;;
url)
    echo "clickhouse://default:@127.0.0.1:$(cat "$dir/port")/default"
    ;;
*)
    echo "usage: $0 start|stop|url" >&2
    exit 2
    ;;
esac
