<#
  Intune platform script: make this PC's Ollama reachable from Stigmer's agent-runner container.

  Add it under Devices > Scripts and remediations > Platform scripts (Windows 10 and later) with:
    - Run this script using the logged on credentials: Yes
        The tray app's OLLAMA_HOST is a User-scope variable of the signed-in user, and stigmer-setup
        restarts that user's Ollama app; as SYSTEM it would change SYSTEM's environment instead.
    - Run script in 64-bit PowerShell host: Yes
    - Enforce script signature check: No (or sign it)
  The PC needs Node.js >= 20 (npx on the user's PATH). An Ollama installed as a Windows service
  needs an elevated run instead: stigmer-setup says so and changes nothing.

  Output: the single JSON report stigmer-setup prints (--json) is written to this script's output,
  which the Intune Management Extension records in its log (AgentExecutor.log under
  C:\ProgramData\Microsoft\IntuneManagementExtension\Logs), and kept in
  %LOCALAPPDATA%\stigmer-setup-intune\last-run.json. Its "ok" is false when a check or a step
  failed; each failed check has an id, a message and the fix.

  Exit code: stigmer-setup's own, so Intune reports the script as failed on anything but 0:
  0 done or nothing to do, 1 a step or check failed, 2 bad usage or invalid input (nothing
  changed), 130 cancelled.
#>

# Pin the version: every PC then runs the same, reviewed release.
$Version = '0.1.0'

# Node prints UTF-8; decode it as such (Windows PowerShell 5.1 defaults to the OEM code page).
[Console]::OutputEncoding = New-Object System.Text.UTF8Encoding $false
# npm and stigmer-setup write notices to stderr; that is output to keep, not a reason to stop.
$ErrorActionPreference = 'Continue'

$logDir = Join-Path $env:LOCALAPPDATA 'stigmer-setup-intune'
New-Item -ItemType Directory -Force -Path $logDir | Out-Null

if (-not (Get-Command npx -ErrorAction SilentlyContinue)) {
  Write-Output "stigmer-setup: npx was not found on PATH for $env:USERNAME; install Node.js 20 or later."
  exit 1
}

# npx's -y skips npx's install prompt; the tool's --yes takes the recommended plan unattended.
# stderr comes back as ErrorRecord objects: keep it apart from the JSON on stdout.
$output = & npx -y "stigmer-setup@$Version" --yes --json 2>&1
$status = $LASTEXITCODE
$stdout = ($output | Where-Object { $_ -isnot [System.Management.Automation.ErrorRecord] } | ForEach-Object { "$_" }) -join "`n"
$stderr = ($output | Where-Object { $_ -is [System.Management.Automation.ErrorRecord] } | ForEach-Object { $_.ToString() }) -join "`n"

Set-Content -Path (Join-Path $logDir 'last-run.json') -Value $stdout -Encoding UTF8
Write-Output $stdout
if ($stderr) { Write-Output "stderr: $stderr" }

# A one-line verdict from the report, for the log; the exit code is what Intune acts on.
try {
  $report = $stdout | ConvertFrom-Json -ErrorAction Stop
  if ($null -eq $report -or $null -eq $report.ok) { throw 'no report' }
  $failed = @($report.checks | Where-Object { $_.status -eq 'fail' })
  Write-Output ("stigmer-setup $Version for ${env:USERNAME}: ok=$($report.ok), exit $status, $($failed.Count) failed check(s)")
  foreach ($check in $failed) {
    $fix = if ($check.fix) { " Fix: $($check.fix)" } else { '' }
    Write-Output ("- $($check.id): $($check.message)$fix")
  }
} catch {
  # No report (npx failed, or bad usage: exit 2 prints its error on stderr only).
  Write-Output "stigmer-setup $Version for ${env:USERNAME}: exit $status, and no JSON report on stdout."
  if ($status -eq 0) { $status = 1 }
}

exit $status
