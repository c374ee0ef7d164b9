<#
.SYNOPSIS
    Capture at scale: Invoke-GridExperiment over a script that writes files of 1 KiB in
    rounds (200,000 and 1,000,000 on the folder store, 100,000 on s3rver). For each: the agent's peak
    RSS above an idle session, every file checked byte-exact with sha256sum against what the store
    holds, the time from the script's exit to the final status, and (at 1,000,000) the agent's CPU
    use per second while every file sits unchanged and synced.
.PARAMETER OldModulePath
    A second build (0.1.0) timed on the same cases, labelled in its own rows.
.PARAMETER Agent
    Run the cases with the module's grid-agent (`grid-agent run`, agent/linux-x64 of -ModulePath)
    instead of Invoke-GridExperiment in pwsh: its peak RSS (/usr/bin/time -f %M) above that of its
    idle run (`grid-agent run -- true` on the same store).
.PARAMETER Cases
    Which of fs200k, fs1m, s3100k to run (all by default).
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Endpoint,
    [Parameter(Mandatory)] [string] $Bucket,
    [string] $OldModulePath,
    [switch] $Agent,
    [string[]] $Cases = @('fs200k', 'fs1m', 's3100k'),
    [int] $IdleSeconds = 60,
    [string] $ResultsPath = (Join-Path $PSScriptRoot 'results.md'),
    [switch] $NoResults
)
$ErrorActionPreference = 'Stop'
$Cases = @($Cases | ForEach-Object { $_ -split "," } | Where-Object { $_ })
. (Join-Path $PSScriptRoot 'BenchCommon.ps1')
$work = Join-Path ([IO.Path]::GetTempPath()) "grid-bench-scale-$([guid]::NewGuid().ToString('N'))"
New-Item -ItemType Directory -Force -Path $work | Out-Null

# The script the agent runs: writes $count files of 1 KiB of random bytes in ten rounds (1,000 files a
# folder), waits until the agent's record says all are synced, then (with an idle window) reads the
# agent's CPU time from /proc over the window, and writes the time of its exit as its last act.
$writer = Join-Path $work 'write_rounds.py'
@'
import json, os, sys, time
count, rounds, record, idle, out = int(sys.argv[1]), 10, sys.argv[2], int(sys.argv[3]), sys.argv[4]
per = count // rounds
for r in range(rounds):
    for i in range(r * per, (r + 1) * per):
        d = "round-%02d/dir-%04d" % (r, i // 1000)
        if i % 1000 == 0 or i == r * per: os.makedirs(d, exist_ok=True)
        with open("%s/file-%07d.bin" % (d, i), "wb") as f: f.write(os.urandom(1024))
    time.sleep(1)
def synced():
    try:
        with open(record) as f: s = json.load(f).get("sync", {})
        return s.get("filesSynced", 0) >= count and s.get("filesPending", 1) == 0
    except (OSError, ValueError): return False
cpu = ""
if idle > 0:
    # The record is rewritten at each heartbeat (10 s); on s3rver it is read through the bucket's folder.
    while not synced(): time.sleep(2)
    time.sleep(12)  # past the pass that wrote the last segment
    tick = os.sysconf("SC_CLK_TCK")
    def used():
        with open("/proc/%d/stat" % os.getppid()) as f: p = f.read().rsplit(")", 1)[1].split()
        return (int(p[11]) + int(p[12])) / tick
    a, t = used(), time.time()
    time.sleep(idle)
    cpu = "%.4f" % ((used() - a) / (time.time() - t))
with open(out, "w") as f: f.write("%.6f %s" % (time.time(), cpu))
'@ | Set-Content $writer

function Invoke-Case {
    param([string] $Module, [string] $Store, [string] $RecordPath, [int] $Count, [string] $Run, [int] $Idle)
    $wd = Join-Path $work "wd-$Run"
    $end = Join-Path $work "end-$Run.txt"
    if ($Agent) { return Invoke-AgentCase @PSBoundParameters }
    $script = @"
`$ErrorActionPreference = 'Stop'
Import-Module '$Module'
`$null = Get-GridRun -Store '$Store' -ErrorAction Ignore
[GC]::Collect()
`$idle = [Diagnostics.Process]::GetCurrentProcess().WorkingSet64
`$e = Invoke-GridExperiment -Run '$Run' -Store '$Store' -WorkingDirectory '$wd' -- python3 '$writer' $Count '$RecordPath' $Idle '$end'
if (`$e.Status -ne 'Succeeded') { throw "ended `$(`$e.Status)" }
`$peak = [long]((Get-Content /proc/self/status | Where-Object { `$_ -like 'VmHWM:*' }) -replace '\D', '') * 1KB
'{0};{1};{2}' -f `$e.Finished.ToUnixTimeMilliseconds(), (`$peak / 1MB), (`$idle / 1MB)
"@
    $out = Invoke-Peer 'dotnet' @('pwsh', '-NoProfile', '-NonInteractive', '-Command', $script)
    $finished, $peak, $idleMiB = ($out.Trim() -split "`n")[-1].Split(';')
    $exitAt, $cpu = (Get-Content $end).Split(' ')
    [pscustomobject]@{ Seconds = ([double]$finished - [double]$exitAt * 1000) / 1000; PeakMiB = [double]$peak; IdleMiB = [double]$idleMiB; Cpu = $cpu; WorkingDirectory = $wd }
}

function Invoke-AgentCase {
    <# The same case run by grid-agent: the peak RSS of the executable (and of what it waits for: the
       python script is far smaller), against its idle run on the same store; the final status as recorded. #>
    param([string] $Module, [string] $Store, [string] $RecordPath, [int] $Count, [string] $Run, [int] $Idle)
    $wd = Join-Path $work "wd-$Run"
    $end = Join-Path $work "end-$Run.txt"
    $exe = Join-Path $(if (Test-Path $Module -PathType Container) { $Module } else { Split-Path $Module }) 'agent/linux-x64/grid-agent'
    $rss = Join-Path $work "rss-$Run.txt"
    $null = Invoke-Peer '/usr/bin/time' @('-f', '%M', '-o', $rss, $exe, 'run', '-q', '-s', $Store, '-r', "$Run-idle", '-C', (Join-Path $work "wd-$Run-idle"), '--', 'true')
    $idleKiB = [double](Get-Content $rss | Select-Object -Last 1)
    & sync
    $null = Invoke-Peer '/usr/bin/time' @('-f', '%M', '-o', $rss, $exe, 'run', '-q', '-s', $Store, '-r', $Run, '-C', $wd, '--', 'python3', $writer, $Count, $RecordPath, $Idle, $end)
    $peakKiB = [double](Get-Content $rss | Select-Object -Last 1)
    Import-Module $Module
    $e = Get-GridExperiment "$Run-exp0" -Store $Store
    if ($e.Status -ne 'Succeeded') { throw "ended $($e.Status)" }
    $exitAt, $cpu = (Get-Content $end).Split(' ')
    [pscustomobject]@{ Seconds = $e.Finished.ToUnixTimeMilliseconds() / 1000 - [double]$exitAt; PeakMiB = $peakKiB / 1024; IdleMiB = $idleKiB / 1024; Cpu = $cpu; WorkingDirectory = $wd }
}

function Test-ByteExact {
    <# sha256sum of every file the script wrote against the same files as the store holds them. #>
    param([string] $Source, [string] $Stored)
    $a = Join-Path $work 'a.sha'; $b = Join-Path $work 'b.sha'
    & bash -c "cd '$Source' && find . -type f -name '*.bin' -print0 | sort -z | xargs -0 sha256sum > '$a'"
    & bash -c "cd '$Stored' && find . -type f -name '*.bin' -print0 | sort -z | xargs -0 sha256sum > '$b'"
    $same = (Get-FileHash $a).Hash -eq (Get-FileHash $b).Hash
    [pscustomobject]@{ Files = @(Get-Content $b).Count; Same = $same }
}

$caseTable = @{
    fs200k = @{ Label = 'folder store, 200,000 files'; Count = 200000; S3 = $false; Idle = 0 }
    fs1m   = @{ Label = 'folder store, 1,000,000 files'; Count = 1000000; S3 = $false; Idle = $IdleSeconds }
    s3100k = @{ Label = 's3rver, 100,000 files'; Count = 100000; S3 = $true; Idle = 0 }
}
$builds = @(@{ Name = $(if ($Agent) { 'grid-agent, this build' } else { 'this build' }); Module = $ModulePath })
if ($OldModulePath) { $builds += @{ Name = '0.1.0'; Module = $OldModulePath } }
$rows = [Collections.Generic.List[string]]::new()
try {
    foreach ($name in $Cases) {
        $case = $caseTable[$name]
        foreach ($build in $builds) {
            $run = "scale-$name-$([guid]::NewGuid().ToString('N').Substring(0, 6))"
            if ($case.S3) {
                $store = "s3://$Bucket/scale-${run}?endpoint=$([uri]::EscapeDataString($Endpoint))"
                # The python script reads the record through a copy the harness keeps fresh: it cannot sign requests.
                $record = Join-Path $work "record-$run.json"
            }
            else {
                $storeDir = Join-Path $work "store-$run"
                $store = $storeDir
                $record = Join-Path $storeDir "runs/$run/exp0/experiment.json"
            }
            Write-Host "== $($case.Label), $($build.Name)"
            & sync
            $r = Invoke-Case -Module $build.Module -Store $store -RecordPath $record -Count $case.Count -Run $run -Idle $case.Idle
            Write-Host ("exit to final status {0:0.0} s, peak {1:0} MiB, idle {2:0} MiB, cpu {3}" -f $r.Seconds, $r.PeakMiB, $r.IdleMiB, $r.Cpu)
            $stored = if ($case.S3) {
                $dest = Join-Path $work "saved-$run"
                Import-Module $build.Module -Force
                Save-GridArtifact "$run-exp0" -Store $store -Destination $dest | Out-Null
                Join-Path $dest "$run/exp0"
            }
            else { Join-Path $storeDir "runs/$run/exp0/artifacts" }
            $check = Test-ByteExact $r.WorkingDirectory $stored
            Write-Host "byte-exact: $($check.Files) files, same: $($check.Same)"
            $cpu = if ($r.Cpu) { '{0:0.0}% of a core' -f ([double]$r.Cpu * 100) } else { '' }
            $rows.Add("| $($case.Label) | $($build.Name) | $('{0:+0}' -f ($r.PeakMiB - $r.IdleMiB)) MiB ($('{0:0}' -f $r.PeakMiB) peak, $('{0:0}' -f $r.IdleMiB) idle) | $($check.Files) of $($case.Count), $(if ($check.Same) { 'all equal' } else { 'DIFFER' }) | $(Format-Seconds $r.Seconds) | $cpu |")
            # rm, not Remove-Item: a million files go in seconds rather than many minutes.
            & rm -rf $r.WorkingDirectory $stored
            if (-not $case.S3) { & rm -rf $storeDir }
        }
    }
    $body = "| files of 1 KiB, in 10 rounds | build | agent RSS above idle | sha256sum, source against store | script exit to final status | agent CPU, all files unchanged |`n|---|---|---:|---|---:|---:|`n" + ($rows -join "`n") +
        "`n`n" + $(if ($Agent) { "One run each, by grid-agent run: 'idle' is the peak RSS of ``grid-agent run -- true`` on the same store, 'peak' that of the run (/usr/bin/time -f %M)." } else { "One run each, in a fresh pwsh: 'idle' is that process with the module loaded and the store listed, 'peak' its high-water mark (VmHWM) at the end." }) + " The script writes the files in ten rounds of a tenth each, a second apart, then (1,000,000 only) waits until the agent's record says every file is synced and measures the agent's CPU time over $IdleSeconds s from /proc. Byte-exact: sha256sum of every file as written against every file as stored (on s3rver, as downloaded with Save-GridArtifact). Target: at most 200 MiB above idle. Measured $(Get-Date -Format 'yyyy-MM-dd')."
    Write-Host $body
    if (-not $NoResults) { Write-ResultsSection -Path $ResultsPath -Title 'Capture at scale' -Body $body }
}
finally {
    & rm -rf $work
}
