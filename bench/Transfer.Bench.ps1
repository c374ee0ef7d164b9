<#
.SYNOPSIS
    Transfer benchmark: downloads, uploads and the capture agent's final sync
    of (a) 2,000 x 64 KiB, (b) 200 x 4 MiB, (c) 2 x 1 GiB and (d) 10,000 x 4 KiB on s3rver and on
    Ceph's RADOS Gateway (-RgwEndpoint), at the defaults, against aws s3 cp --recursive and rclone
    copy --transfers 16 on the same server in the same run.
    Ours is timed in-session (around the command) and as a whole process (pwsh start-up and the
    module import included, as a scheduled job pays). CPU per 1,000 files is each process's CPU
    minus that of a process that only lists the same files. Medians of -Runs, a sync before each.
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Endpoint,
    [Parameter(Mandatory)] [string] $Bucket,
    # Ceph's RADOS Gateway (build.ps1 -Task Bench starts one): the same sets on a real S3 server.
    [string] $RgwEndpoint,
    [ValidateSet('s3rver', 'RGW')] [string[]] $Servers = @('RGW', 's3rver'),
    [string] $ResultsPath = (Join-Path $PSScriptRoot 'results.md'),
    [int] $Runs = 5,
    [ValidateSet('a', 'b', 'c', 'd')] [string[]] $Sets = @('a', 'b', 'c', 'd'),
    # s3rver's data folder (build.ps1 -Task Bench passes it in GRID_BENCH_S3_DATA): uploads are removed from it between runs.
    [string] $ServerData = $env:GRID_BENCH_S3_DATA,
    # RGW's ceph.conf (build.ps1 -Task Bench passes it in GRID_BENCH_RGW_CONF): removed uploads are collected at once.
    [string] $RgwConf = $env:GRID_BENCH_RGW_CONF
)
$ErrorActionPreference = 'Stop'
. (Join-Path $PSScriptRoot 'BenchCommon.ps1')
if ('RGW' -in $Servers -and -not $RgwEndpoint) { Write-Host 'No -RgwEndpoint: the RGW rows are skipped.' -ForegroundColor Yellow; $Servers = @($Servers | Where-Object { $_ -ne 'RGW' }) }
if ('s3rver' -in $Servers -and (-not $ServerData -or -not (Test-Path (Join-Path $ServerData $Bucket)))) { throw "s3rver's data folder is needed (-ServerData or GRID_BENCH_S3_DATA) to remove uploads between runs." }

$work = Join-Path ([IO.Path]::GetTempPath()) "grid-bench-xfer-$([guid]::NewGuid().ToString('N'))"
$allSets = @(
    @{ Name = 'a'; Label = '(a) 2,000 x 64 KiB'; Count = 2000; Size = 64KB }
    @{ Name = 'b'; Label = '(b) 200 x 4 MiB'; Count = 200; Size = 4MB }
    @{ Name = 'c'; Label = '(c) 2 x 1 GiB'; Count = 2; Size = 1GB }
    @{ Name = 'd'; Label = '(d) 10,000 x 4 KiB'; Count = 10000; Size = 4KB }
)

function Measure-Tool {
    <# A whole process under /usr/bin/time: wall seconds, CPU seconds (user + system), peak RSS in MiB, and what it printed. #>
    param([string] $Exe, [string[]] $Arguments, [hashtable] $Environment = @{})
    $stats = Join-Path $work 'time.txt'
    $sw = [Diagnostics.Stopwatch]::StartNew()
    $out = Invoke-Peer '/usr/bin/time' (@('-f', '%U %S %M', '-o', $stats, $Exe) + $Arguments) $Environment
    $wall = $sw.Elapsed.TotalSeconds
    $user, $system, $rss = (Get-Content $stats | Select-Object -Last 1).Split(' ')
    [pscustomobject]@{ Seconds = $wall; Whole = $wall; Cpu = [double]$user + [double]$system; PeakMiB = [double]$rss / 1024; IdleMiB = $null; Output = $out }
}

function Measure-Ours {
    <#
        One command of ours in a fresh pwsh: its own time (in-session), the whole process's time and
        CPU, and peak RSS above the process with the module loaded and $Prepare done.
    #>
    param([string] $Prepare, [string] $Command)
    $script = @"
`$ErrorActionPreference = 'Stop'
Import-Module '$ModulePath'
$Prepare
[GC]::Collect()
`$idle = [Diagnostics.Process]::GetCurrentProcess().WorkingSet64
`$sw = [Diagnostics.Stopwatch]::StartNew()
$Command
`$t = `$sw.Elapsed.TotalSeconds
`$peak = [long]((Get-Content /proc/self/status | Where-Object { `$_ -like 'VmHWM:*' }) -replace '\D', '') * 1KB
'{0};{1};{2}' -f `$t, (`$peak / 1MB), (`$idle / 1MB)
"@
    $r = Measure-Tool 'dotnet' @('pwsh', '-NoProfile', '-NonInteractive', '-Command', $script)
    $t, $peak, $idle = ($r.Output.Trim() -split "`n")[-1].Split(';')
    [pscustomobject]@{ Seconds = [double]$t; Whole = $r.Whole; Cpu = $r.Cpu; PeakMiB = [double]$peak; IdleMiB = [double]$idle }
}

function Get-Median([double[]] $Values) { $s = @($Values | Sort-Object); $s[[int][math]::Floor($s.Count / 2)] }

function Measure-Runs {
    <# $Runs runs of $Action, each after $Reset and a sync (no tool pays for another's writes); medians of each figure. #>
    param([scriptblock] $Action, [scriptblock] $Reset, [int] $Count = $Runs)
    $results = foreach ($i in 1..$Count) {
        & $Reset
        & sync
        & $Action $i
    }
    & $Reset
    [pscustomobject]@{
        Median  = Get-Median $results.Seconds
        Whole   = Get-Median $results.Whole
        Cpu     = Get-Median $results.Cpu
        PeakMiB = ($results | Measure-Object PeakMiB -Maximum).Maximum
        IdleMiB = if ($null -ne $results[0].IdleMiB) { ($results | Measure-Object IdleMiB -Minimum).Minimum } else { $null }
        Times   = (@($results.Seconds | Sort-Object) | ForEach-Object { '{0:0.00}' -f $_ }) -join ', '
    }
}

function New-Set([string] $Dir, [hashtable] $Set) {
    New-Item -ItemType Directory -Force -Path $Dir | Out-Null
    $buffer = [byte[]]::new([math]::Min($Set.Size, 64MB))
    $rnd = [Random]::new(7)
    foreach ($i in 0..($Set.Count - 1)) {
        $fs = [IO.File]::Create((Join-Path $Dir ('f{0:D5}.bin' -f $i)))
        for ($left = $Set.Size; $left -gt 0; $left -= $buffer.Length) { $rnd.NextBytes($buffer); $fs.Write($buffer, 0, [math]::Min($left, $buffer.Length)) }
        $fs.Dispose()
    }
}


function Add-Rows([string] $Direction, [hashtable] $Set, [Collections.Specialized.OrderedDictionary] $M, [hashtable] $Baseline) {
    $ours = $M[0].Median
    foreach ($k in $M.Keys) {
        $r = $M[$k]
        $rss = if ($null -ne $r.IdleMiB) { '{0:0} MiB ({1:+0} above idle)' -f $r.PeakMiB, ($r.PeakMiB - $r.IdleMiB) } else { '{0:0} MiB' -f $r.PeakMiB }
        $cpu = if ($Baseline.ContainsKey($k)) { '{0:0.00} s' -f (($r.Cpu - $Baseline[$k]) * 1000 / $Set.Count) } else { '' }
        $tables[$Direction].Add("| $($Set.Label) | $k | $(Format-Seconds $r.Median) | $(Format-Seconds $r.Whole) | $($r.Times) | $cpu | $rss | $('{0:0.00}x' -f ($r.Median / $ours)) |")
    }
}

function Write-Results {
    $head = '| set | tool | median | whole process | runs (s) | CPU per 1,000 files | peak RSS | vs ours |' + "`n" + '|---|---|---:|---:|---|---:|---:|---:|'
    $body = "### Download`n`n$head`n$($tables.Download -join "`n")`n`n### Upload`n`n$head`n$($tables.Upload -join "`n")`n`n" +
        "### Capture: the agent's final sync`n`n| set | tool | median | runs (s) | peak RSS |`n|---|---|---:|---|---:|`n$($tables.Capture -join "`n")`n`n" +
        "### The server's own limit, in the same run`n`n| set | how | rate | what that allows | ours as a share of it |`n|---|---|---:|---:|---:|`n$($limits -join "`n")`n`n" +
        "Measured $(Get-Date -Format 'yyyy-MM-dd') on $ServerName, at the defaults, medians of $Runs runs, each after a sync, downloads into an empty folder and uploads to an empty prefix. " +
        "Ours: 'median' is the command itself in a fresh pwsh (in-session), 'whole process' adds pwsh start-up, the module import and the listing, as a scheduled job pays. " +
        "Peers are whole processes under /usr/bin/time: both columns are the same figure. CPU per 1,000 files: the process's user and system CPU minus that of a process that only lists the same files (ours: Get-GridArtifact, or Get-ChildItem for uploads; rclone: lsf), per 1,000 files. " +
        "Peak RSS: the process's high-water mark; 'above idle' subtracts ours with the module loaded and the store listed. Capture: Invoke-GridExperiment whose script copies the set into its folder and exits; the time from the script's exit to the final status (every file synced, the manifest sealed)."
    Write-ResultsSection -Path $ResultsPath -Title "Transfers on $ServerName (both directions, at the defaults)" -Body $body
}

try {
    Push-Location $PSScriptRoot/..
    Import-Module $ModulePath
    # The loop sets $Endpoint to each server's in turn: s3rver's is kept here, so the server after RGW is not RGW again.
    $s3rverEndpoint = $Endpoint
    foreach ($ServerName in $Servers) {
    $tables = [ordered]@{ Download = [Collections.Generic.List[string]]::new(); Upload = [Collections.Generic.List[string]]::new(); Capture = [Collections.Generic.List[string]]::new() }
    $limits = [Collections.Generic.List[string]]::new()
    $isRgw = $ServerName -eq 'RGW'
    $Endpoint = if ($isRgw) { $RgwEndpoint } else { $s3rverEndpoint }
    $remote = if ($isRgw) { 'rgw' } else { 's3rver' }
    $peers = if ($isRgw) { Get-PeerSetup $Endpoint 'rgw' 'Ceph' } else { Get-PeerSetup $Endpoint }
    $aws = $peers.Aws
    $peerEnv = $peers.Env
    $endpointArg = [uri]::EscapeDataString($Endpoint)
    $s3dl = "s3://$Bucket/dl?endpoint=$endpointArg"
    $s3up = "s3://$Bucket/up?endpoint=$endpointArg"
    if ($isRgw) {
        try { $null = Invoke-Peer $aws @('--endpoint-url', $Endpoint, 's3api', 'head-bucket', '--bucket', $Bucket) $peerEnv }
        catch { $null = Invoke-Peer $aws @('--endpoint-url', $Endpoint, 's3', 'mb', "s3://$Bucket") $peerEnv }
        # RGW's memstore holds every byte in RAM: uploads are removed through S3 between runs, and the
        # tails of large objects (which RGW frees in the background, two hours later) collected at once.
        $collect = { if ($RgwConf) { $null = Invoke-Peer 'radosgw-admin' @('-c', $RgwConf, 'gc', 'process', '--include-all') } }
        $clearUploads = { try { $null = Invoke-Peer 'rclone' @('purge', "rgw:$Bucket/up") $peerEnv } catch { if ("$_" -notmatch 'not found|directory not found') { throw } }; & $collect }
    }
    else {
        $uploaded = Join-Path (Join-Path $ServerData $Bucket) 'up'
        $clearUploads = { Remove-Item -Recurse -Force $uploaded -ErrorAction Ignore }
    }
    & $clearUploads
    foreach ($set in $allSets | Where-Object { $_.Name -in $Sets }) {
        $src = Join-Path $work "src-$($set.Name)"
        $run = "bench-$($set.Name)"
        Write-Host "Writing $($set.Label)..."
        New-Set $src $set
        Write-Host "Storing $($set.Label) in the bucket..."
        if (-not (Get-GridRun $run -Store $s3dl -ErrorAction Ignore)) { $null = Import-GridArtifact -Path $src -Run $run -Store $s3dl }
        $dlPrefix = "$Bucket/dl/runs/$run/exp0/artifacts"
        $dest = Join-Path $work 'dest'
        $clearDest = { Remove-Item -Recurse -Force $dest -ErrorAction Ignore }

        Write-Host "Downloads of $($set.Label)..."
        $list = "`$null = Get-GridArtifact $run-exp0 -Store '$s3dl'"
        $m = [ordered]@{}
        $m['Save-GridArtifact'] = Measure-Runs { Measure-Ours $list "Get-GridArtifact $run-exp0 -Store '$s3dl' | Save-GridArtifact -Destination '$dest'" } $clearDest
        $m['aws s3 cp --recursive'] = Measure-Runs { Measure-Tool $aws @('s3', 'cp', '--recursive', '--only-show-errors', '--endpoint-url', $Endpoint, "s3://$dlPrefix/", $dest) $peerEnv } $clearDest
        $m['rclone copy --transfers 16'] = Measure-Runs { Measure-Tool 'rclone' @('copy', '--transfers', '16', "${remote}:$dlPrefix", $dest) $peerEnv } $clearDest
        $baseline = @{
            'Save-GridArtifact'          = (Measure-Runs { Measure-Ours $list "Get-GridArtifact $run-exp0 -Store '$s3dl' | Out-Null" } {} 3).Cpu
            'rclone copy --transfers 16' = (Measure-Runs { Measure-Tool 'rclone' @('lsf', "${remote}:$dlPrefix") $peerEnv } {} 3).Cpu
        }
        Add-Rows 'Download' $set $m $baseline
        $downloadSeconds = $m['Save-GridArtifact'].Median

        Write-Host "Uploads of $($set.Label)..."
        $m = [ordered]@{}
        $m['Import-GridArtifact'] = Measure-Runs { param($i) Measure-Ours "`$null = Get-GridRun -Store '$s3up' -ErrorAction Ignore" "`$null = Import-GridArtifact -Path '$src' -Run 'up-$($set.Name)-$i' -Store '$s3up'" } $clearUploads
        $m['aws s3 cp --recursive'] = Measure-Runs { Measure-Tool $aws @('s3', 'cp', '--recursive', '--only-show-errors', '--endpoint-url', $Endpoint, $src, "s3://$Bucket/up/aws/") $peerEnv } $clearUploads
        $m['rclone copy --transfers 16'] = Measure-Runs { Measure-Tool 'rclone' @('copy', '--transfers', '16', $src, "${remote}:$Bucket/up/rclone") $peerEnv } $clearUploads
        $baseline = @{
            'Import-GridArtifact'        = (Measure-Runs { Measure-Ours "`$null = Get-GridRun -Store '$s3up' -ErrorAction Ignore" "Get-ChildItem -Recurse -File '$src' | Out-Null" } {} 3).Cpu
            'rclone copy --transfers 16' = (Measure-Runs { Measure-Tool 'rclone' @('lsf', $src) $peerEnv } {} 3).Cpu
        }
        Add-Rows 'Upload' $set $m $baseline

        Write-Host "Capture of $($set.Label)..."
        $end = Join-Path $work 'end.txt'
        $finished = Join-Path $work 'finished.txt'
        $exitToFinal = [Collections.Generic.List[double]]::new()
        $capture = Measure-Runs {
            param($i)
            $wd = Join-Path $work "wd-$i"
            $r = Measure-Ours "`$null = Get-GridRun -Store '$s3up' -ErrorAction Ignore" @"
`$e = Invoke-GridExperiment -Run 'cap-$($set.Name)-$i' -Store '$s3up' -WorkingDirectory '$wd' -- bash -c 'cp -r "$src"/. . && date +%s.%N > "$end"'
if (`$e.Status -ne 'Succeeded') { throw "ended `$(`$e.Status)" }
Set-Content '$finished' `$e.Finished.ToUnixTimeMilliseconds()
"@
            $exitToFinal.Add(([double](Get-Content $finished) - [double](Get-Content $end) * 1000) / 1000)
            Remove-Item -Recurse -Force $wd -ErrorAction Ignore
            $r
        } $clearUploads
        $sorted = @($exitToFinal | Sort-Object)
        $tables.Capture.Add("| $($set.Label) | Invoke-GridExperiment: script exit to final status | $(Format-Seconds (Get-Median $exitToFinal)) | $(($sorted | ForEach-Object { '{0:0.00}' -f $_ }) -join ', ') | $('{0:0} MiB ({1:+0} above idle)' -f $capture.PeakMiB, ($capture.PeakMiB - $capture.IdleMiB)) |")
        foreach ($k in 'aws s3 cp --recursive', 'rclone copy --transfers 16') {
            $tables.Capture.Add("| $($set.Label) | $k (the whole upload, from above) | $(Format-Seconds $m[$k].Median) | $($m[$k].Times) | $('{0:0} MiB' -f $m[$k].PeakMiB) |")
        }

        # The server's own limit for this set.
        $url = (Invoke-Peer $aws @('s3', 'presign', '--endpoint-url', $Endpoint, "s3://$dlPrefix/f00000.bin") $peerEnv).Trim()
        if ($set.Name -ne 'c') {
            $wrk = Invoke-Peer 'wrk' @('-t2', '-c16', '-d5s', $url)
            $rps = [double]([regex]::Match($wrk, 'Requests/sec:\s+([\d.]+)').Groups[1].Value)
            $limitSeconds = $set.Count / $rps
            $limits.Add("| $($set.Label) | wrk, 16 connections, one presigned object | $('{0:0}' -f $rps) GETs/s | $(Format-Seconds $limitSeconds) for the set | $('{0:0%}' -f ($limitSeconds / $downloadSeconds)) of the download |")
        }
        else {
            $curl = Measure-Runs { Measure-Tool 'curl' @('-s', '-o', (Join-Path $dest 'one.bin'), '--create-dirs', $url) } $clearDest
            $limitSeconds = $curl.Median * $set.Count
            $limits.Add("| $($set.Label) | curl of one presigned 1 GiB object to disk | $(Format-Seconds $curl.Median) per GiB | $(Format-Seconds $limitSeconds) for the set, one after another | $('{0:0%}' -f ($limitSeconds / $downloadSeconds)) of the download |")
        }
        Remove-Item -Recurse -Force $src -ErrorAction Ignore
        # RGW keeps the set in RAM: the next set gets the room.
        if ($isRgw) { Remove-GridRun $run -Store $s3dl -Force -Confirm:$false; & $collect }
        Write-Results # after each set, so a long run that stops keeps what it measured
    }
    }
    Get-Content -Raw $ResultsPath | Select-String -Pattern '(?ms)^## Transfers on.*?(?=^## Transfers:|\z)' | ForEach-Object { Write-Host $_.Matches[0].Value }
}
finally {
    Pop-Location
    Remove-Item -Recurse -Force $work -ErrorAction Ignore
}
