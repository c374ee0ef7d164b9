<#
.SYNOPSIS
    Download benchmark (issue 3/8): (a) 2,000 x 64 KiB, (b) 200 x 4 MiB, (c) 2 x 1 GiB, from s3rver and
    from the local store with Save-GridArtifact; the same downloads with aws s3 cp --recursive and
    rclone copy (defaults, and --transfers 16); the server's own limit (wrk on a presigned URL, curl
    to disk). Medians of several runs, peak RSS for each tool.
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Endpoint,
    [Parameter(Mandatory)] [string] $Bucket,
    [string] $ResultsPath = (Join-Path $PSScriptRoot 'results.md'),
    [int] $Runs = 5
)
$ErrorActionPreference = 'Stop'
. (Join-Path $PSScriptRoot 'BenchCommon.ps1')

$work = Join-Path ([IO.Path]::GetTempPath()) "grid-bench-dl-$([guid]::NewGuid().ToString('N'))"
$local = Join-Path $work 'store'
$peers = Get-PeerSetup $Endpoint
$aws = $peers.Aws
$peerEnv = $peers.Env
$s3 = "s3://$Bucket/dl?endpoint=$([uri]::EscapeDataString($Endpoint))"
$sets = @(
    @{ Name = 'a'; Label = '(a) 2,000 x 64 KiB'; Count = 2000; Size = 64KB }
    @{ Name = 'b'; Label = '(b) 200 x 4 MiB'; Count = 200; Size = 4MB }
    @{ Name = 'c'; Label = '(c) 2 x 1 GiB'; Count = 2; Size = 1GB }
)

function Measure-Process {
    <# Runs a command under /usr/bin/time; returns seconds and peak RSS (MiB). #>
    param([string] $Exe, [string[]] $Arguments, [hashtable] $Environment = @{})
    $rss = Join-Path $work 'rss.txt'
    $sw = [Diagnostics.Stopwatch]::StartNew()
    $null = Invoke-Peer '/usr/bin/time' (@('-f', '%M', '-o', $rss, $Exe) + $Arguments) $Environment
    $seconds = $sw.Elapsed.TotalSeconds
    [pscustomobject]@{ Seconds = $seconds; PeakMiB = [double](Get-Content $rss | Select-Object -Last 1) / 1024 }
}

function Measure-Ours {
    <# One Save-GridArtifact in a fresh pwsh: time of the save itself, and peak RSS above the idle module. #>
    param([string] $Store, [string] $RunName, [string] $Dest)
    $script = @"
`$ErrorActionPreference = 'Stop'
Import-Module '$ModulePath'
`$null = Get-GridArtifact $RunName-exp0 -Store '$Store' | Select-Object -First 1
[GC]::Collect()
`$idle = [Diagnostics.Process]::GetCurrentProcess().WorkingSet64
`$sw = [Diagnostics.Stopwatch]::StartNew()
Get-GridArtifact $RunName-exp0 -Store '$Store' | Save-GridArtifact -Destination '$Dest'
`$t = `$sw.Elapsed.TotalSeconds
`$peak = [long]((Get-Content /proc/self/status | Where-Object { `$_ -like 'VmHWM:*' }) -replace '\D', '') * 1KB
'{0};{1};{2}' -f `$t, (`$peak / 1MB), (`$idle / 1MB)
"@
    $out = Invoke-Peer 'dotnet' @('pwsh', '-NoProfile', '-NonInteractive', '-Command', $script)
    $t, $peak, $idle = ($out.Trim() -split "`n")[-1].Split(';')
    [pscustomobject]@{ Seconds = [double]$t; PeakMiB = [double]$peak; IdleMiB = [double]$idle }
}

function Measure-Runs([scriptblock] $Action, [string] $Dest) {
    $results = foreach ($i in 1..$Runs) {
        Remove-Item -Recurse -Force $Dest -ErrorAction Ignore
        & sync # no tool pays for another's writes
        & $Action
    }
    Remove-Item -Recurse -Force $Dest -ErrorAction Ignore
    $sorted = @($results | Sort-Object Seconds)
    [pscustomobject]@{
        Median  = $sorted[[int][math]::Floor($sorted.Count / 2)].Seconds
        PeakMiB = ($results | Measure-Object PeakMiB -Maximum).Maximum
        IdleMiB = if ($results[0].PSObject.Properties['IdleMiB']) { ($results | Measure-Object IdleMiB -Minimum).Minimum } else { $null }
        Times   = ($sorted.Seconds | ForEach-Object { '{0:0.00}' -f $_ }) -join ', '
    }
}

try {
    Push-Location $PSScriptRoot/..
    foreach ($set in $sets) {
        $run = "bench-$($set.Name)"
        $dir = Join-Path $local "runs/$run"
        $art = Join-Path $dir 'exp0/artifacts'
        New-Item -ItemType Directory -Force -Path $art | Out-Null
        Write-Host "Writing $($set.Label)..."
        $entries = [Collections.Generic.List[object]]::new()
        $rnd = [Random]::new(7)
        $buffer = [byte[]]::new([math]::Min($set.Size, 64MB))
        foreach ($i in 0..($set.Count - 1)) {
            $rel = 'f{0:D4}.bin' -f $i
            $path = Join-Path $art $rel
            $fs = [IO.File]::Create($path)
            $sha = [Security.Cryptography.IncrementalHash]::CreateHash('SHA256')
            for ($left = $set.Size; $left -gt 0; $left -= $buffer.Length) { $rnd.NextBytes($buffer); $n = [math]::Min($left, $buffer.Length); $fs.Write($buffer, 0, $n); $sha.AppendData($buffer, 0, $n) }
            $fs.Dispose()
            $entries.Add(@{ path = $rel; size = $set.Size; sha256 = [Convert]::ToHexString($sha.GetHashAndReset()).ToLowerInvariant(); modified = (Get-Date).ToUniversalTime().ToString('o') })
        }
        $stamp = (Get-Date).ToUniversalTime().ToString('o')
        @{ schema = 1; name = $run; created = $stamp; parameters = @{} } | ConvertTo-Json | Set-Content (Join-Path $dir 'run.json')
        @{ schema = 1; run = $run; experiment = 'exp0'; status = 'Succeeded'; exitCode = 0; created = $stamp; parameters = @{} } | ConvertTo-Json | Set-Content (Join-Path $dir 'exp0/experiment.json')
        @{ schema = 1; run = $run; experiment = 'exp0'; sealed = $true; updated = $stamp; artifacts = $entries } | ConvertTo-Json -Depth 5 | Set-Content (Join-Path $dir 'exp0/manifest.json')
        Write-Host "Copying $($set.Label) to the bucket..."
        $null = Invoke-Peer $aws @('s3', 'cp', '--recursive', '--only-show-errors', '--endpoint-url', $Endpoint, $dir, "s3://$Bucket/dl/runs/$run") $peerEnv
    }

    $rows = [Collections.Generic.List[string]]::new()
    $rows.Add('| set | tool | median | runs (s) | peak RSS | vs ours on s3rver |')
    $rows.Add('|---|---|---:|---|---:|---:|')
    $limits = [Collections.Generic.List[string]]::new()
    foreach ($set in $sets) {
        $run = "bench-$($set.Name)"
        $src = "s3://$Bucket/dl/runs/$run/exp0/artifacts/"
        $dest = Join-Path $work 'dest'
        Write-Host "Timing $($set.Label)..."
        $m = [ordered]@{}
        $m['Save-GridArtifact, s3rver'] = Measure-Runs { Measure-Ours $s3 $run $dest } $dest
        $m['Save-GridArtifact, local store'] = Measure-Runs { Measure-Ours $local $run $dest } $dest
        $m['aws s3 cp --recursive'] = Measure-Runs { Measure-Process $aws @('s3', 'cp', '--recursive', '--only-show-errors', '--endpoint-url', $Endpoint, $src, $dest) $peerEnv } $dest
        $m['rclone copy'] = Measure-Runs { Measure-Process 'rclone' @('copy', "s3rver:$Bucket/dl/runs/$run/exp0/artifacts", $dest) $peerEnv } $dest
        $m['rclone copy --transfers 16'] = Measure-Runs { Measure-Process 'rclone' @('copy', '--transfers', '16', "s3rver:$Bucket/dl/runs/$run/exp0/artifacts", $dest) $peerEnv } $dest
        $ours = $m['Save-GridArtifact, s3rver'].Median
        foreach ($k in $m.Keys) {
            $r = $m[$k]
            $rss = if ($null -ne $r.IdleMiB) { '{0:0} MiB ({1:+0} above idle)' -f $r.PeakMiB, ($r.PeakMiB - $r.IdleMiB) } else { '{0:0} MiB' -f $r.PeakMiB }
            $rows.Add("| $($set.Label) | $k | $(Format-Seconds $r.Median) | $($r.Times) | $rss | $('{0:0.00}x' -f ($r.Median / $ours)) |")
        }

        # The server's own limit for this set.
        $url = (Invoke-Peer $aws @('s3', 'presign', '--endpoint-url', $Endpoint, "$($src)f0000.bin") $peerEnv).Trim()
        if ($set.Name -ne 'c') {
            $wrk = Invoke-Peer 'wrk' @('-t2', '-c16', '-d5s', $url)
            $rps = [double]([regex]::Match($wrk, 'Requests/sec:\s+([\d.]+)').Groups[1].Value)
            $limitSeconds = $set.Count / $rps
            $limits.Add("| $($set.Label) | wrk, 16 connections, one presigned object | $('{0:0}' -f $rps) GETs/s | $(Format-Seconds $limitSeconds) for the set | $('{0:0%}' -f ($limitSeconds / $ours)) |")
        }
        else {
            $curl = Measure-Runs { Measure-Process 'curl' @('-s', '-o', (Join-Path $dest 'one.bin'), '--create-dirs', $url) } $dest
            $limitSeconds = $curl.Median * $set.Count
            $limits.Add("| $($set.Label) | curl of one presigned 1 GiB object to disk | $(Format-Seconds $curl.Median) per GiB | $(Format-Seconds $limitSeconds) for the set, one after another | $('{0:0%}' -f ($limitSeconds / $ours)) |")
        }
    }
    $body = ($rows -join "`n") + "`n`nThe server's own limit, measured in the same run:`n`n| set | how | rate | what that allows | ours as a share of it |`n|---|---|---:|---:|---:|`n" + ($limits -join "`n") +
        "`n`nMeasured $(Get-Date -Format 'yyyy-MM-dd'), medians of $Runs runs, each into an empty folder, after a sync. Ours: one Save-GridArtifact at the defaults in a fresh pwsh, timed around the save; peak RSS is the process's high-water mark, and 'above idle' subtracts the process with the module loaded and the store listed. Peers are timed as whole processes under /usr/bin/time."
    Write-ResultsSection -Path $ResultsPath -Title 'Downloads (issue 3/5: at the defaults)' -Body $body
    Write-Host $body
}
finally {
    Pop-Location
    Remove-Item -Recurse -Force $work -ErrorAction Ignore
}
