<#
.SYNOPSIS
    Sweeps on Slurm: a sweep run as one array job by Start-GridRun -Scheduler Slurm,
    beside the same array job run by plain sbatch with its outputs copied to S3 by aws cli or rclone.
.DESCRIPTION
    On the one-node Slurm that build.ps1 -Task Bench starts (tests/slurm/Start-Slurm.sh) and the
    bench's s3rver. Each figure is the wall time from submit to squeue showing none of the job's tasks (looked at every 100 ms), median of
    -Runs, with a sync before each: an array of -Experiments tasks, -ThrottleLimit at once, each
    writing -Megabytes of random bytes and then copying them to the bucket:
      - sbatch alone (nothing copied): the floor, what Slurm and the node cost;
      - sbatch, then `aws s3 cp --recursive` in each task;
      - sbatch, then `rclone copy` in each task;
      - Start-GridRun -Scheduler Slurm to an S3 store (pwsh start, capture agent, final sync,
        sealed manifest, status), at the defaults.
    Every tool's end is when squeue no longer shows its job (looked at every 100 ms).
    Then the signal budget: a running experiment that has just written -Megabytes more is ended by
    scancel (SIGTERM, then SIGKILL after KillWait); the time from scancel to its final status, and
    whether every file was synced.
.PARAMETER ModulePath
    The module build to measure.
.PARAMETER Endpoint
    The s3rver endpoint (build.ps1 passes it).
.PARAMETER Bucket
    The bucket on it.
.EXAMPLE
    dotnet pwsh ./build.ps1 -Task Bench -BenchFilter Cluster*
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Endpoint,
    [Parameter(Mandatory)] [string] $Bucket,
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
$peer = Get-PeerSetup $Endpoint
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
function Invoke-PlainArray([string] $Name, [string] $Copy) {
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
    foreach ($k in $peer.Env.Keys) { $psi.Environment[$k] = $peer.Env[$k] }
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

try {
    $aws = "$($peer.Aws) s3 cp --recursive --quiet --endpoint-url $Endpoint `"`$OUT`" s3://$Bucket/bench-aws/`$SLURM_ARRAY_JOB_ID/exp`$T/"
    $rclone = "rclone copy `"`$OUT`" s3rver:$Bucket/bench-rclone/`$SLURM_ARRAY_JOB_ID/exp`$T/"
    $rows = [ordered]@{}
    $rows['sbatch alone (no copy)'] = Measure-Median { Invoke-PlainArray 'plain' 'true' } -Runs $Runs -NoWarmup -Sync
    $rows['sbatch + aws s3 cp'] = Measure-Median { Invoke-PlainArray 'aws' $aws } -Runs $Runs -NoWarmup -Sync
    $rows['sbatch + rclone copy'] = Measure-Median { Invoke-PlainArray 'rclone' $rclone } -Runs $Runs -NoWarmup -Sync
    $grid = Measure-Median -Runs $Runs -NoWarmup -Sync -Script {
        $store = "s3://$Bucket/bench-grid-$([guid]::NewGuid().ToString('N'))?endpoint=$([uri]::EscapeDataString($Endpoint))"
        $run = Start-GridRun -Command "head -c $bytes /dev/urandom > model.bin # seed {seed}" -Parameter @{ seed = 1..$Experiments } -Store $store -WorkingRoot (Join-Path $work 'grid') `
            -Scheduler Slurm -ThrottleLimit $ThrottleLimit
        Wait-JobGone $run.JobId
        $run = Get-GridRun $run.Name -Store $store
        if ($run.Status -ne 'Succeeded' -or $run.ArtifactCount -ne $Experiments -or $run.ArtifactBytes -ne $Experiments * $bytes) {
            throw "The grid sweep ended $($run.Status) with $($run.ArtifactCount) artifact(s), $($run.ArtifactBytes) bytes."
        }
    }
    $rows['Start-GridRun -Scheduler Slurm'] = $grid

    # The signal budget: scancel of a running experiment right after it wrote $Megabytes more.
    $store = "s3://$Bucket/bench-term-$([guid]::NewGuid().ToString('N'))?endpoint=$([uri]::EscapeDataString($Endpoint))"
    $termTimes = foreach ($i in 1..$Runs) {
        $run = Start-GridRun -Command "head -c 1024 /dev/urandom > first.bin; sleep 4; head -c $bytes /dev/urandom > last.bin; sleep 600" -Name "term-$i" -Store $store `
            -WorkingRoot (Join-Path $work 'term') -Scheduler Slurm
        $deadline = [DateTime]::UtcNow.AddSeconds(60)
        while ((Get-GridExperiment "term-$i-exp0" -Store $store).ArtifactCount -lt 1) { if ([DateTime]::UtcNow -gt $deadline) { throw 'term: exp0 never synced its first file' }; Start-Sleep -Milliseconds 100 }
        while (-not (Test-Path (Join-Path $work "term/term-$i/exp0/last.bin")) -or (Get-Item (Join-Path $work "term/term-$i/exp0/last.bin")).Length -lt $bytes) { Start-Sleep -Milliseconds 20 }
        $sw = [Diagnostics.Stopwatch]::StartNew()
        scancel $run.JobId
        while ((Get-GridExperiment "term-$i-exp0" -Store $store).Status -in 'Running', 'Syncing') { Start-Sleep -Milliseconds 50 }
        $took = $sw.Elapsed.TotalSeconds
        $e = Get-GridExperiment "term-$i-exp0" -Store $store
        if ($e.Status -ne 'Failed' -or $e.Signal -ne 'SIGTERM' -or $e.ArtifactCount -ne 2) { throw "term: ended $($e.Status) ($($e.Signal)) with $($e.ArtifactCount) artifact(s)" }
        $took
    }
    $termMedian = @($termTimes | Sort-Object)[[int][math]::Floor($Runs / 2)]

    $floor = $rows['sbatch alone (no copy)'].Median
    $lines = @(
        "$Experiments experiments of $Megabytes MB of random bytes each, $ThrottleLimit at once, one node (2 cores, 4 CPUs declared to Slurm 22.05), s3rver on loopback; wall time from submit to squeue showing none of the job's tasks (looked at every 100 ms), median of $Runs with a sync before each, $(Get-Date -Format 'yyyy-MM-dd').",
        '',
        '| tool | median | runs | over sbatch alone |',
        '|---|---:|---|---:|'
    )
    foreach ($k in $rows.Keys) {
        $r = $rows[$k]
        $lines += "| $k | $(Format-Seconds $r.Median) | $(($r.Times | ForEach-Object { '{0:0.00}' -f $_ }) -join ', ') | +$(Format-Seconds ($r.Median - $floor)) |"
    }
    $ratioAws = $grid.Median / $rows['sbatch + aws s3 cp'].Median
    $ratioRclone = $grid.Median / $rows['sbatch + rclone copy'].Median
    $lines += ''
    $lines += "Start-GridRun against aws s3 cp: $('{0:0.00}' -f $ratioAws)x the time; against rclone copy: $('{0:0.00}' -f $ratioRclone)x. What the module adds per task is pwsh's start and the agent (claim, heartbeat, sealed manifest, status), and it records and checks a SHA-256 per file, which the copies do not."
    $lines += ''
    $lines += "Signal budget: scancel (SIGTERM, SIGKILL after KillWait = $killWait s) of a running experiment right after it wrote $Megabytes MB: final status written $(Format-Seconds $termMedian) later (median of $Runs; $(($termTimes | ForEach-Object { '{0:0.00}' -f $_ }) -join ', ') s), every file synced, Failed with Signal SIGTERM."
    $body = $lines -join "`n"
    Write-Host $body
    if (-not $NoResults) { Write-ResultsSection -Path $ResultsPath -Title 'Sweeps on Slurm' -Body $body }
}
finally {
    Remove-Item -Recurse -Force $work -ErrorAction Ignore
}
