#!/bin/bash
# Jamf Pro script: make the Mac's Ollama reachable from Stigmer's agent-runner container.
#
# Add it under Settings → Computer Management → Scripts and run it from a policy (for example at
# login, or from Self Service). Parameters:
#   $4  stigmer-setup version to run (default below); pin it so every Mac runs the same release
#   $5  optional folder holding node and npx, when Node is not in /opt/homebrew/bin or
#       /usr/local/bin (e.g. an nvm install: /Users/<name>/.nvm/versions/node/v22.x.y/bin)
#
# Jamf runs scripts as root, but on macOS everything stigmer-setup changes is the user's own
# (~/.homebrew/services/ollama.env, ~/Library/LaunchAgents, the user's launchd environment), and it
# refuses to run through sudo as root. So it runs as the user logged in at the console:
# `launchctl asuser` puts it in that user's GUI session (where `launchctl setenv` and
# `open -a Ollama` act), and `sudo -u <user> -H` drops root and sets HOME to theirs.
#
# The policy log gets the single JSON report stigmer-setup prints (--json), then a one-line
# verdict. Exit codes are stigmer-setup's: 0 done or nothing to do, 1 a step or check failed (the
# report's "ok" is false and its failed checks say why), 2 bad usage, 130 cancelled. Jamf marks
# the policy failed on any non-zero exit.
set -uo pipefail

version="${4:-0.1.0}"
node_dir="${5:-}"

console_user="$(stat -f%Su /dev/console)"
if [ -z "$console_user" ] || [ "$console_user" = "root" ] || [ "$console_user" = "loginwindow" ] || [ "$console_user" = "_mbsetupuser" ]; then
  echo "stigmer-setup: nobody is logged in at the console (${console_user:-none}); run this policy at login or from Self Service."
  exit 1
fi
console_uid="$(id -u "$console_user")"

# Jamf's PATH is minimal; the user's tools (node, npx, brew, docker) live in these folders.
user_path="/opt/homebrew/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
if [ -n "$node_dir" ]; then user_path="$node_dir:$user_path"; fi

report="$(mktemp "${TMPDIR:-/tmp}/stigmer-setup.XXXXXX")" || exit 1
trap 'rm -f "$report"' EXIT

# npx's -y skips npx's install prompt; the tool's --yes takes the recommended plan unattended.
status=0
launchctl asuser "$console_uid" sudo -u "$console_user" -H env PATH="$user_path" npx -y "stigmer-setup@${version}" --yes --json > "$report" || status=$?

cat "$report"
echo
case "$status" in
  0) echo "stigmer-setup ${version} for ${console_user}: done (exit 0)." ;;
  1) echo "stigmer-setup ${version} for ${console_user}: a step or check failed (exit 1); see the failed checks' fix above." ;;
  2) echo "stigmer-setup ${version} for ${console_user}: bad usage or invalid input, nothing changed (exit 2); is Node.js >= 20 installed for this user?" ;;
  *) echo "stigmer-setup ${version} for ${console_user}: exit ${status}." ;;
esac
exit "$status"
