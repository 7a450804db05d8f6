#!/usr/bin/env bash
# CLI conventions, checked on the built binary: exit status, error shape, --json.
# usage: cli_test.sh PATH/TO/dfly
set -u
dfly="$1"
fails=0
check() {  # check NAME EXPECTED_STATUS CMD... ; stdout/stderr kept in $out/$err
  local name="$1" want="$2"
  shift 2
  out=$("$@" 2>/tmp/dfly-cli-err.$$)
  local got=$?
  err=$(cat /tmp/dfly-cli-err.$$)
  if [ "$got" != "$want" ]; then
    echo "FAIL $name: exit $got, want $want; stderr: $err"
    fails=$((fails + 1))
  fi
}
expect() {  # expect NAME CONDITION-RESULT MESSAGE
  if [ "$2" != 0 ]; then echo "FAIL $1: $3"; fails=$((fails + 1)); fi
}

check version 0 "$dfly" --version
[[ "$out" =~ ^dfly\ [0-9]+\.[0-9]+\.[0-9]+$ ]]; expect version $? "got '$out'"

check help 0 "$dfly" --help
[[ "$out" == *lwkt* && "$out" == *ccms* ]]; expect help $? "nouns missing from --help"

check no_command 2 "$dfly"
[[ "$err" == dfly:* ]]; expect no_command $? "stderr not 'dfly: ...': $err"

check bad_option 2 "$dfly" lwkt ping --count -5
[[ "$err" == dfly:*count* ]]; expect bad_option $? "stderr does not name the option: $err"

check unknown_verb 2 "$dfly" ccms frobnicate
[[ "$err" == dfly:* ]]; expect unknown_verb $? "stderr not 'dfly: ...': $err"

check ping_json 0 "$dfly" lwkt ping --cpus 2 --count 200 --json
[[ "$out" == *'"round_trips"'* && "$out" == *'"p50_us"'* ]]; expect ping_json $? "json lacks fields"

check stress_json 0 "$dfly" ccms stress --threads 3 --ops 20000 --json
[[ "$out" == *'"ok": true'* && "$out" == *'"ranges_when_idle": 1'* ]]; expect stress_json $? "stress not ok: $out"

rm -f /tmp/dfly-cli-err.$$
if [ $fails -ne 0 ]; then
  echo "$fails CLI check(s) failed"
  exit 1
fi
echo "all CLI checks passed"
