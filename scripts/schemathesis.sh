#!/usr/bin/env bash
# Schema fuzzing: runs Schemathesis against the OpenAPI document of a real chat-server on a
# fresh sled store, as a logged-in user, and fails on any server error (5xx), any answer
# that breaks the documented schema, status codes, content types or headers, any
# authenticated route that lets an unauthenticated request through, and any panic or error
# in the server's log.
#
#   scripts/schemathesis.sh              # as CI runs it
#   SCHEMATHESIS_EXAMPLES=200 scripts/schemathesis.sh   # a longer run
#   SCHEMATHESIS_SEED=123 scripts/schemathesis.sh       # replay a run's seed
#   scripts/schemathesis.sh --report har --report-dir /tmp/st   # more arguments go to
#                                                               # `schemathesis run`
#
# Needs cargo and python3 with venv (PYTHON names another interpreter). Schemathesis is
# installed from PyPI into a virtual environment beside the build (or SCHEMATHESIS_VENV),
# once per set of versions. CHAT_SERVER_BIN names a server binary to use instead of
# building one.
set -euo pipefail
cd "$(dirname "$0")/.."

# The versions this script was checked with: Schemathesis's checks and flags change between
# releases, Hypothesis decides what is generated and jsonschema_rs what conforms.
REQUIREMENTS=(schemathesis==4.32.5 hypothesis==6.170.17 jsonschema_rs==0.60.3)
# Test cases per operation and phase: enough to vary every field and reach every operation's
# success, small enough that the fuzzing takes well under a minute on two cores.
EXAMPLES="${SCHEMATHESIS_EXAMPLES:-30}"
# The checks every answer must pass. Not here: positive_data_acceptance and
# negative_data_rejection, which need the schema to say exactly what the service accepts;
# JSON Schema cannot (lengths after trimming, in bytes, what a URL parser takes), so the
# document's limits are on the strict side (see chat-server/src/openapi/limits.rs). Nor
# ensure_resource_availability: it expects a created object to answer until a DELETE of that
# object's own path, and cannot know that deleting a conversation deletes its messages, so a
# scenario "POST a message, DELETE its conversation, GET the message" fails it on a correct
# 404 (seen in one of two CI runs, then every time with its seed). The API tests read back
# what they create.
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,missing_required_header,unsupported_method,allow_header_conformance,ignored_auth,use_after_free

PYTHON="${PYTHON:-python3}"
target_dir="$(cargo metadata --format-version 1 --no-deps |
    "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
venv="${SCHEMATHESIS_VENV:-$target_dir/schemathesis-venv}"

echo "== ${REQUIREMENTS[*]}"
if [ "$(cat "$venv/requirements" 2>/dev/null)" != "${REQUIREMENTS[*]}" ]; then
    rm -rf "$venv"
    if ! "$PYTHON" -m venv "$venv"; then
        echo "$PYTHON cannot make a virtual environment (on Debian: apt-get install python3-venv)" >&2
        exit 1
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${REQUIREMENTS[@]}"
    echo "${REQUIREMENTS[*]}" >"$venv/requirements"
fi

if [ -n "${CHAT_SERVER_BIN:-}" ]; then
    server_bin="$CHAT_SERVER_BIN"
else
    echo "== cargo build -p chat-server"
    cargo build --quiet -p chat-server
    server_bin="$target_dir/debug/chat-server"
fi

work="$(mktemp -d)"
server_pid=
fuzzer_pid=
provider_pid=
stop() {
    for pid in $fuzzer_pid $server_pid $provider_pid; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap stop EXIT
trap 'exit 130' INT TERM

# A stand-in LLM provider on loopback, so completions reach their success: it answers every
# request with a whole OpenAI chat completion (the server reads a whole answer also when it
# asked for a stream). The server may call it because of --allow-private-endpoints; the
# short upstream timeouts bound a call to an endpoint the fuzzer made up.
echo "== a stand-in LLM provider"
"$PYTHON" - "$work/provider-port" <<'EOF' &
import http.server, json, os, sys

ANSWER = json.dumps({
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "fixture reply"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
}).encode()

class Provider(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(ANSWER)))
        self.end_headers()
        self.wfile.write(ANSWER)

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Provider)
with open(sys.argv[1] + ".tmp", "w") as out:
    out.write(str(server.server_address[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
server.serve_forever()
EOF
provider_pid=$!
for _ in $(seq 1 100); do
    [ -s "$work/provider-port" ] && break
    sleep 0.1
done
provider_url="http://127.0.0.1:$(cat "$work/provider-port")/v1"

echo "== chat-server on a fresh sled store"
"$server_bin" --listen 127.0.0.1:0 --store "sled:$work/db" --registration open \
    --allow-private-endpoints --upstream-timeout 5s --upstream-chunk-timeout 5s \
    --shutdown-timeout 5s >"$work/server.log" 2>&1 &
server_pid=$!
addr=
for _ in $(seq 1 300); do
    addr="$(sed -n 's/.* listen=\([^ ]*\).*/\1/p' "$work/server.log" | head -n 1)"
    [ -n "$addr" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$addr" ]; then
    echo "chat-server did not start:" >&2
    cat "$work/server.log" >&2
    exit 1
fi
base="http://$addr"
echo "listening on $base"

# A user of its own, a few objects of every kind it owns, and a Schemathesis configuration
# that draws path ids and body references from those objects most of the time: random ids
# alone would reach little beyond 404. Logout gets a user and a token of its own, since it
# revokes the token it is called with.
"$PYTHON" - "$base" "$work" "$provider_url" <<'EOF'
import json, secrets, sys, urllib.request

base, work, provider_url = sys.argv[1], sys.argv[2], sys.argv[3]

def call(path, body, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    request = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)

def register(name):
    credentials = {"username": name, "password": secrets.token_hex(16)}
    call("/users", credentials)
    return credentials

login = lambda name: call("/users/login", register(name))

fuzzer = login("fuzzer")
token, user = fuzzer["token"], fuzzer["user_id"]
create = lambda path, body: call(path, body, token)["id"]
new_conversation = lambda: create("/chat/conversations", {"title": "fixture"})
new_message = lambda conversation: create(
    "/chat/messages", {"conversation_id": conversation, "role": "user", "content": "hello"}
)
new_attachment = lambda message: create(
    "/chat/attachments", {"message_id": message, "file_type": "pdf", "file_path": "a.pdf"}
)
new_provider = lambda n, endpoint="https://llm.example": create(
    "/chat/llm-providers", {"name": f"fixture {n}", "api_endpoint": endpoint}
)

# Objects that lists and bodies refer to, kept out of the ids that deletes are given so they
# outlive the run: a conversation with several messages (pages of one or two get a Link),
# a message with several attachments, providers with and without a config (those with one
# at the stand-in provider, so completions with them succeed).
full = new_conversation()
first = new_message(full)
for _ in range(3):
    new_attachment(first)
messages = [first] + [new_message(full) for _ in range(3)]
configured = [new_provider(n, provider_url) for n in range(2)]
for provider in configured:
    call("/chat/user-llm-configs", {"provider_id": provider, "api_key": "sk-fixture-0123456789"}, token)
providers = configured + [new_provider(2)]
# Objects any operation on `{id}` may read, change or delete.
spare = (
    [new_conversation() for _ in range(2)]
    + messages[1:]
    + [new_attachment(first) for _ in range(2)]
    + [new_provider(n) for n in range(3, 5)]
)

# A user whose credentials logins are given most of the time, so some succeed.
known = register("fuzzer-login")

dictionaries = {
    "username": [known["username"]],
    "password": [known["password"]],
    "spare": spare,
    "own_user": [user],
    "full": [full],
    "first": [first],
    "messages": messages,
    "providers": providers,
}
everywhere = {
    "path.id": "spare",
    "path.user_id": "own_user",
    "path.provider_id": "providers",
    "body.user_id": "own_user",
    "body.conversation_id": "full",
    "body.message_id": "messages",
    "body.provider_id": "providers",
}
lists = {"ListMessages": "full", "ListAttachments": "first"}
binding = lambda name: f'{{ dictionary = "{name}", probability = 0.8 }}'
with open(f"{work}/schemathesis.toml", "w") as config:
    for name, values in dictionaries.items():
        config.write(f"[dictionaries.{name}]\nvalues = {json.dumps(values)}\n\n")
    config.write("[parameters]\n")
    for key, name in everywhere.items():
        config.write(f'"{key}" = {binding(name)}\n')
    for operation, name in lists.items():
        config.write(f'\n[[operations]]\ninclude-operation-id = "{operation}"\n')
        config.write(f'parameters = {{ "path.id" = {binding(name)} }}\n')
    # Completions answer the conversation that has messages.
    config.write('\n[[operations]]\ninclude-operation-id = "Complete"\n')
    config.write(f'parameters = {{ "path.id" = {binding("full")} }}\n')
    config.write('\n[[operations]]\ninclude-operation-id = "Login"\n')
    config.write(f'parameters = {{ "body.username" = {binding("username")}, ')
    config.write(f'"body.password" = {binding("password")} }}\n')
with open(f"{work}/token", "w") as out:
    out.write(token)
with open(f"{work}/logout-token", "w") as out:
    out.write(login("fuzzer-logout")["token"])
EOF

# Runs Schemathesis in the scratch directory (it leaves files where it runs), in the
# background so that a signal to this script stops it at once rather than when it ends.
fuzz() {
    local label="$1" token_file="$2" checks="$3"
    shift 3
    echo "== schemathesis: $label"
    (cd "$work" && exec "$venv/bin/schemathesis" --config-file "$work/schemathesis.toml" run \
        "$base/openapi.json" \
        --header "Authorization: Bearer $(cat "$token_file")" \
        --checks "$checks" \
        --max-examples "$EXAMPLES" \
        ${SCHEMATHESIS_SEED:+--seed "$SCHEMATHESIS_SEED"} \
        --generation-database none \
        --request-timeout 30 \
        --no-color \
        "$@") &
    fuzzer_pid=$!
    local status=0
    wait "$fuzzer_pid" || status=$?
    fuzzer_pid=
    return "$status"
}

failed=()
fuzz "every operation but logout and completions" "$work/token" "$CHECKS" \
    --exclude-path /users/logout --exclude-operation-id Complete "$@" ||
    failed+=("schemathesis found failures in the operations other than logout (above)")
fuzz "logout" "$work/logout-token" "$CHECKS" --include-path /users/logout "$@" ||
    failed+=("schemathesis found failures in logout (above)")
# A provider the fuzzer creates has an endpoint nobody answers at, and 502 (or 504) is then
# the documented answer of a completion, so completions run without the 5xx check; a 500
# is still caught, as an ERROR in the server's log (below).
fuzz "completions" "$work/token" "${CHECKS/not_a_server_error,/}" \
    --include-operation-id Complete "$@" ||
    failed+=("schemathesis found failures in completions (above)")

if ! kill -0 "$server_pid" 2>/dev/null; then
    failed+=("chat-server exited during the run")
fi
# A 5xx is caught above; a panic or an error the server logged without one is caught here.
if grep -E 'panicked|ERROR' "$work/server.log" >"$work/errors.log"; then
    echo "== errors in the server's log"
    head -n 50 "$work/errors.log"
    failed+=("chat-server logged $(wc -l <"$work/errors.log") error line(s) (above)")
fi

echo "== schema fuzzing summary"
if [ "${#failed[@]}" -eq 0 ]; then
    echo "clean: no server error, no answer outside the documented schema ($EXAMPLES examples per operation)"
    exit 0
fi
printf 'FAILED: %s\n' "${failed[@]}"
exit 1
