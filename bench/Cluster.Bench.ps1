<#
.SYNOPSIS
    Sweeps on Slurm: a sweep run as one array job by Start-GridRun -Scheduler Slurm,
    beside the same array job run by plain sbatch with its outputs copied to S3 by aws cli or rclone.
.DESCRIPTION
    On the one-node Slurm that build.ps1 -Task Bench starts (tests/slurm/Start-Slurm.sh) and the
    bench's s3rver, and on Ceph's RADOS Gateway when -RgwEndpoint is given. Each figure is the wall time from submit to squeue showing none of the job's tasks (looked at every 100 ms), median of
    -Runs, with a sync before each: an array of -Experiments tasks, -ThrottleLimit at once, each
    writing -Megabytes of random bytes and then copying them to the bucket:
      - sbatch alone (nothing copied): the floor, what Slurm and the node cost;
      - sbatch, then `aws s3 cp --recursive` in each task;
      - sbatch, then `rclone copy` in each task;
      - Start-GridRun -Scheduler Slurm to an S3 store (capture agent, final sync, sealed manifest,
        status), at the defaults: each task runs grid-agent (the module's own executable), and again
        with pwsh only ($env:GRID_AGENT = 'pwsh': each task starts pwsh and imports the module).
    Every tool's end is when squeue no longer shows its job (looked at every 100 ms). The tools are
    interleaved: one run of each in turn on each server, round after round.
    Then the signal budget: a running experiment that has just written -Megabytes more is ended by
    scancel (SIGTERM, then SIGKILL after KillWait); the time from scancel to its final status, and
    whether every file was synced.
.PARAMETER ModulePath
    The module build to measure.
.PARAMETER Endpoint
    The s3rver endpoint (build.ps1 passes it).
.PARAMETER Bucket
    The bucket on it (made on RGW when missing).
.PARAMETER RgwEndpoint
    RGW's endpoint; without it only s3rver is measured. Each round's uploads are removed from it
    after the round (memstore holds them in RAM), and collected at once with -RgwConf.
.EXAMPLE
    dotnet pwsh ./build.ps1 -Task Bench -BenchFilter Cluster*
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Endpoint,
    [Parameter(Mandatory)] [string] $Bucket,
    [string] $RgwEndpoint,
    [string] $RgwConf = $env:GRID_BENCH_RGW_CONF,
    [switch] $NoSignalBudget,
    [int] $Experiments = 8,
    [int] $ThrottleLimit = 4,
    [int] $Megabytes = 16,
    [int] $Runs = 3,
    [string] $ResultsPath = (Join-Path $PSScriptRoot 'results.md'),
    [switch] $NoResults
)
$ErrorActionPreference = 'Stop'
. (Join-Path $PSScriptRoot 'BenchCommon.ps1')
if (-not $env:SLURM_CONF -or -not (Get-Command sbatch -ErrorAction Ignore)) {
    Write-Warning 'No Slurm to measure on (build.ps1 -Task Bench starts one as root on Linux): Cluster.Bench.ps1 is skipped.'
    return
}
Import-Module $ModulePath -Force
$servers = @([pscustomobject]@{ Name = 's3rver'; Endpoint = $Endpoint; Remote = 's3rver'; Peer = (Get-PeerSetup $Endpoint) })
if ($RgwEndpoint) { $servers += [pscustomobject]@{ Name = 'RGW'; Endpoint = $RgwEndpoint; Remote = 'rgw'; Peer = (Get-PeerSetup $RgwEndpoint 'rgw' 'Ceph') } }
$prefix = "bench-cluster-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
$work = Join-Path ([IO.Path]::GetTempPath()) "grid-bench-cluster-$([guid]::NewGuid().ToString('N'))"
New-Item -ItemType Directory -Path $work | Out-Null
$bytes = $Megabytes * 1MB
$killWait = [int]((scontrol show config | Select-String '^KillWait\s*=\s*(\d+)').Matches[0].Groups[1].Value)

# Until squeue no longer shows the job in its default states (pending, running, completing), looked
# at every 100 ms: the same end for every tool (sbatch --wait polls at seconds apart).
function Wait-JobGone([string] $JobId) {
    $deadline = [DateTime]::UtcNow.AddMinutes(10)
    while (@(squeue -h -j $JobId -o '%i' 2>$null).Count -gt 0) {
        if ([DateTime]::UtcNow -gt $deadline) { throw "job $JobId did not end within 10 minutes" }
        Start-Sleep -Milliseconds 100
    }
}

# One plain array job, each task writing its file and then running $Copy (bash, with $OUT the
# task's folder and $T its index).
function Invoke-PlainArray([string] $Name, [string] $Copy, $Peer) {
    $dir = Join-Path $work "$Name-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
    New-Item -ItemType Directory -Path $dir | Out-Null
    $script = Join-Path $dir 'task.sh'
    Set-Content -LiteralPath $script -Value @"
#!/bin/bash
set -e
T=`$SLURM_ARRAY_TASK_ID
OUT=$dir/exp`$T
mkdir -p "`$OUT"
head -c $bytes /dev/urandom > "`$OUT/model.bin"
$Copy
touch "`$OUT/copied"
"@
    $psi = [Diagnostics.ProcessStartInfo]::new('sbatch')
    foreach ($a in @('--parsable', "--array=0-$($Experiments - 1)%$ThrottleLimit", "--output=$dir/%a.out", "--chdir=$dir", $script)) { $psi.ArgumentList.Add($a) }
    foreach ($k in $Peer.Env.Keys) { $psi.Environment[$k] = $Peer.Env[$k] }
    $psi.Environment.Remove('AWS_CA_BUNDLE') | Out-Null
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    $p = [Diagnostics.Process]::Start($psi)
    $err = $p.StandardError.ReadToEndAsync()
    $job = $p.StandardOutput.ReadToEnd().Trim()
    $p.WaitForExit()
    if ($p.ExitCode -ne 0) { throw "sbatch for $Name failed ($($p.ExitCode)): $($err.Result)" }
    Wait-JobGone $job
    # set -e: a task marks itself done only once its copy succeeded.
    $done = @(Get-ChildItem $dir -Recurse -Filter 'copied').Count
    if ($done -ne $Experiments) { throw "$Name`: $done of $Experiments tasks copied their file: $(Get-Content -Raw (Join-Path $dir '0.out') -ErrorAction Ignore)" }
}

# RGW's memstore holds every byte in RAM: a round's uploads go through S3, and their tails are collected at once.
function Clear-Rgw($Server) {
    try { $null = Invoke-Peer 'rclone' @('purge', "$($Server.Remote):$Bucket/$prefix") $Server.Peer.Env } catch { if ("$_" -notmatch 'not found') { throw } }
    if ($RgwConf) { $null = Invoke-Peer 'radosgw-admin' @('-c', $RgwConf, 'gc', 'process', '--include-all') }
}

# One sweep by Start-GridRun -Scheduler Slurm to an S3 store on $Server; with -PwshOnly every task runs under pwsh.
function Invoke-GridSweep($Server, [switch] $PwshOnly) {
    $store = "s3://$Bucket/$prefix/grid-$([guid]::NewGuid().ToString('N'))?endpoint=$([uri]::EscapeDataString($Server.Endpoint))"
    $root = Join-Path $work 'grid'
    if ($PwshOnly) { $env:GRID_AGENT = 'pwsh' }
    try {
        $run = Start-GridRun -Command "head -c $bytes /dev/urandom > model.bin # seed {seed}" -Parameter @{ seed = 1..$Experiments } -Store $store -WorkingRoot $root `
            -Scheduler Slurm -ThrottleLimit $ThrottleLimit
    }
    finally { Remove-Item Env:GRID_AGENT -ErrorAction Ignore }
    # Which agent runs the tasks: the job script execs grid-agent, or has no executable to try (read at submit: the run's folder may go with its last task).
    $jobScript = Get-ChildItem -LiteralPath $root -Directory | Where-Object Name -Like "$($run.Name).*" | ForEach-Object { Join-Path $_.FullName 'slurm.sh' }
    if (-not $jobScript -or ((Get-Content -Raw $jobScript) -match 'exec "\$agent" plan') -eq [bool]$PwshOnly) { throw "The sweep did not run with $(if ($PwshOnly) { 'pwsh only' } else { 'grid-agent' }) ($jobScript)." }
    Wait-JobGone $run.JobId
    $run = Get-GridRun $run.Name -Store $store
    if ($run.Status -ne 'Succeeded' -or $run.ArtifactCount -ne $Experiments -or $run.ArtifactBytes -ne $Experiments * $bytes) {
        throw "The grid sweep ended $($run.Status) with $($run.ArtifactCount) artifact(s), $($run.ArtifactBytes) bytes."
    }
}

try {
    $tools = [ordered]@{
        'sbatch alone (no copy)' = { param($s) Invoke-PlainArray 'plain' 'true' $s.Peer }
        'sbatch + aws s3 cp' = { param($s) Invoke-PlainArray 'aws' "$($s.Peer.Aws) s3 cp --recursive --quiet --endpoint-url $($s.Endpoint) `"`$OUT`" s3://$Bucket/$prefix/aws/`$SLURM_ARRAY_JOB_ID/exp`$T/" $s.Peer }
        'sbatch + rclone copy' = { param($s) Invoke-PlainArray 'rclone' "rclone copy `"`$OUT`" $($s.Remote):$Bucket/$prefix/rclone/`$SLURM_ARRAY_JOB_ID/exp`$T/" $s.Peer }
        'Start-GridRun -Scheduler Slurm (grid-agent)' = { param($s) Invoke-GridSweep $s }
        'Start-GridRun -Scheduler Slurm (pwsh only)' = { param($s) Invoke-GridSweep $s -PwshOnly }
    }
    foreach ($s in $servers | Where-Object Name -eq 'RGW') {
        try { $null = Invoke-Peer $s.Peer.Aws @('--endpoint-url', $s.Endpoint, 's3api', 'head-bucket', '--bucket', $Bucket) $s.Peer.Env }
        catch { $null = Invoke-Peer $s.Peer.Aws @('--endpoint-url', $s.Endpoint, 's3', 'mb', "s3://$Bucket") $s.Peer.Env }
    }
    $times = @{}
    foreach ($round in 1..$Runs) {
        foreach ($s in $servers) {
            foreach ($tool in $tools.Keys) {
                & sync
                $sw = [Diagnostics.Stopwatch]::StartNew()
                & $tools[$tool] $s
                $key = "$($s.Name)|$tool"
                if (-not $times[$key]) { $times[$key] = [Collections.Generic.List[double]]::new() }
                $times[$key].Add($sw.Elapsed.TotalSeconds)
                Write-Host ("round {0}, {1}, {2}: {3:0.00} s" -f $round, $s.Name, $tool, $sw.Elapsed.TotalSeconds)
            }
            if ($s.Name -eq 'RGW') { Clear-Rgw $s }
        }
    }

    # The signal budget (s3rver): scancel of a running experiment right after it wrote $Megabytes more.
    $termTimes = @()
    if (-not $NoSignalBudget) {
        $store = "s3://$Bucket/$prefix/term?endpoint=$([uri]::EscapeDataString($Endpoint))"
        $termTimes = foreach ($i in 1..$Runs) {
            $run = Start-GridRun -Command "head -c 1024 /dev/urandom > first.bin; sleep 4; head -c $bytes /dev/urandom > last.bin; sleep 600" -Name "term-$i" -Store $store `
                -WorkingRoot (Join-Path $work 'term') -Scheduler Slurm
            $deadline = [DateTime]::UtcNow.AddSeconds(60)
            while ((Get-GridExperiment "term-$i-exp0" -Store $store).ArtifactCount -lt 1) { if ([DateTime]::UtcNow -gt $deadline) { throw 'term: exp0 never synced its first file' }; Start-Sleep -Milliseconds 100 }
            # The run's folder is named by the run and a suffix of its own (term-1.<hash>).
            $last = Join-Path (Get-ChildItem -LiteralPath (Join-Path $work 'term') -Directory | Where-Object Name -Like "term-$i.*").FullName 'exp0/last.bin'
            while (-not (Test-Path $last) -or (Get-Item $last).Length -lt $bytes) { Start-Sleep -Milliseconds 20 }
            $sw = [Diagnostics.Stopwatch]::StartNew()
            scancel $run.JobId
            while ((Get-GridExperiment "term-$i-exp0" -Store $store).Status -in 'Running', 'Syncing') { Start-Sleep -Milliseconds 50 }
            $took = $sw.Elapsed.TotalSeconds
            $e = Get-GridExperiment "term-$i-exp0" -Store $store
            if ($e.Status -ne 'Failed' -or $e.Signal -ne 'SIGTERM' -or $e.ArtifactCount -ne 2) { throw "term: ended $($e.Status) ($($e.Signal)) with $($e.ArtifactCount) artifact(s)" }
            $took
        }
    }

    $lines = @(
        "$Experiments experiments of $Megabytes MB of random bytes each, $ThrottleLimit at once, one node (2 cores, 4 CPUs declared to Slurm 22.05), the store on loopback; wall time from submit to squeue showing none of the job's tasks (looked at every 100 ms), median of $Runs interleaved rounds (each tool once per server per round) with a sync before each, $(Get-Date -Format 'yyyy-MM-dd').",
        '',
        '| tool | store | median | runs (s) | over sbatch alone |',
        '|---|---|---:|---|---:|'
    )
    $median = @{}
    foreach ($s in $servers) {
        foreach ($tool in $tools.Keys) { $median["$($s.Name)|$tool"] = Get-MedianOf $times["$($s.Name)|$tool"] }
        $floor = $median["$($s.Name)|sbatch alone (no copy)"]
        foreach ($tool in $tools.Keys) {
            $m = $median["$($s.Name)|$tool"]
            $lines += "| $tool | $($s.Name) | $(Format-Seconds $m) | $(($times["$($s.Name)|$tool"] | ForEach-Object { '{0:0.00}' -f $_ }) -join ', ') | +$(Format-Seconds ($m - $floor)) |"
        }
    }
    $lines += ''
    foreach ($s in $servers) {
        $rc = $median["$($s.Name)|sbatch + rclone copy"]; $aws = $median["$($s.Name)|sbatch + aws s3 cp"]
        foreach ($agent in 'grid-agent', 'pwsh only') {
            $g = $median["$($s.Name)|Start-GridRun -Scheduler Slurm ($agent)"]
            $lines += "- $($s.Name), Start-GridRun ($agent): $('{0:0.00}' -f ($g / $rc))x sbatch + rclone copy, $('{0:0.00}' -f ($g / $aws))x sbatch + aws s3 cp."
        }
    }
    $lines += '', 'Target for grid-agent: within 1.5x of sbatch + rclone copy and ahead of sbatch + aws s3 cp. What the module adds per task is the agent (claim, heartbeat, sealed manifest, status; with pwsh only, also pwsh''s start and the module''s import), and it records and checks a SHA-256 per file, which the copies do not.'
    if ($termTimes) {
        $termMedian = Get-MedianOf $termTimes
        $lines += ''
        $lines += "Signal budget (s3rver): scancel (SIGTERM, SIGKILL after KillWait = $killWait s) of a running experiment right after it wrote $Megabytes MB: final status written $(Format-Seconds $termMedian) later (median of $Runs; $(($termTimes | ForEach-Object { '{0:0.00}' -f $_ }) -join ', ') s), every file synced, Failed with Signal SIGTERM."
    }
    $body = $lines -join "`n"
    Write-Host $body
    if (-not $NoResults) { Write-ResultsSection -Path $ResultsPath -Title 'Sweeps on Slurm' -Body $body }
}
finally {
    foreach ($s in $servers | Where-Object Name -eq 'RGW') { Clear-Rgw $s }
    foreach ($s in $servers | Where-Object Name -eq 's3rver') { try { $null = Invoke-Peer 'rclone' @('purge', "s3rver:$Bucket/$prefix") $s.Peer.Env } catch { Write-Warning "Could not remove $prefix from s3rver: $_" } }
    Remove-Item -Recurse -Force $work -ErrorAction Ignore
}
