#!/usr/bin/env bash
# Headless-browser tests (`make test-browser`; CI runs it). Installs
# Debian's chromium and chromium-driver when they are missing, then renders
# a report.html in headless Chromium through ChromeDriver and checks its
# layout (runner/report TestReportInChromium). The screenshot goes to
# $KOMPRESS_REPORT_SCREENSHOT when set.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
	sudo=
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	echo "browser: installing ${need[*]}" >&2
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
KOMPRESS_CHROMIUM=$(command -v chromium)
KOMPRESS_CHROMEDRIVER=$(command -v chromedriver)
export KOMPRESS_CHROMIUM KOMPRESS_CHROMEDRIVER KOMPRESS_BROWSER_TESTS=1
"$KOMPRESS_CHROMIUM" --version 2>/dev/null | head -1 >&2 || true
go test -count=1 -v -run 'TestReportInChromium' ./runner/report/
