<#
.SYNOPSIS
    Capture benchmark: time from a script's exit to its final status on s3rver for
    (a) 2,000 x 64 KiB, (b) 200 x 4 MiB, (c) 2 x 1 GiB, against aws s3 cp --recursive and
    rclone copy --transfers 16 uploading the same folders; the agent's peak memory above idle while it
    syncs one 3 GiB file and six 1.5 GiB files; time from a file's last write to its arrival in the
    local store (median and p95).
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Endpoint,
    [Parameter(Mandatory)] [string] $Bucket,
    [string] $ResultsPath = (Join-Path $PSScriptRoot 'results.md'),
    [int] $Runs = 3
)
$ErrorActionPreference = 'Stop'
. (Join-Path $PSScriptRoot 'BenchCommon.ps1')
$peers = Get-PeerSetup $Endpoint
$work = Join-Path ([IO.Path]::GetTempPath()) "grid-bench-cap-$([guid]::NewGuid().ToString('N'))"
$s3 = "s3://$Bucket/capture?endpoint=$([uri]::EscapeDataString($Endpoint))"

function New-Set([string] $Dir, [int] $Count, [long] $Size) {
    New-Item -ItemType Directory -Force -Path $Dir | Out-Null
    $buffer = [byte[]]::new([math]::Min($Size, 64MB))
    $rnd = [Random]::new(11)
    foreach ($i in 0..($Count - 1)) {
        $fs = [IO.File]::Create((Join-Path $Dir ('f{0:D4}.bin' -f $i)))
        for ($left = $Size; $left -gt 0; $left -= $buffer.Length) { $rnd.NextBytes($buffer); $fs.Write($buffer, 0, [math]::Min($left, $buffer.Length)) }
        $fs.Dispose()
    }
}

function Invoke-Capture {
    <# One Invoke-GridExperiment in a fresh pwsh whose script copies $Source in and exits; returns
       seconds from the script's exit to the final status, and the agent's peak RSS above idle. #>
    param([string] $Store, [string] $Source, [string] $Run)
    $wd = Join-Path $work "wd-$Run"
    $end = Join-Path $work "end-$Run.txt"
    $script = @"
`$ErrorActionPreference = 'Stop'
Import-Module '$ModulePath'
`$null = Get-GridRun -Store '$Store' -ErrorAction Ignore
[GC]::Collect()
`$idle = [Diagnostics.Process]::GetCurrentProcess().WorkingSet64
`$e = Invoke-GridExperiment -Run '$Run' -Store '$Store' -WorkingDirectory '$wd' -- bash -c 'cp -r "$Source"/. . && date +%s.%N > "$end"'
if (`$e.Status -ne 'Succeeded') { throw "ended `$(`$e.Status)" }
`$peak = [long]((Get-Content /proc/self/status | Where-Object { `$_ -like 'VmHWM:*' }) -replace '\D', '') * 1KB
'{0};{1};{2}' -f `$e.Finished.ToUnixTimeMilliseconds(), (`$peak / 1MB), (`$idle / 1MB)
"@
    $out = Invoke-Peer 'dotnet' @('pwsh', '-NoProfile', '-NonInteractive', '-Command', $script)
    $finished, $peak, $idle = ($out.Trim() -split "`n")[-1].Split(';')
    $exit = [double](Get-Content $end) * 1000
    Remove-Item -Recurse -Force $wd, $end -ErrorAction Ignore
    [pscustomobject]@{ Seconds = ([double]$finished - $exit) / 1000; PeakMiB = [double]$peak; IdleMiB = [double]$idle }
}

function Get-Median([double[]] $v) { $s = @($v | Sort-Object); if ($s.Count % 2) { $s[[int][math]::Floor($s.Count / 2)] } else { ($s[$s.Count / 2 - 1] + $s[$s.Count / 2]) / 2 } }

try {
    Push-Location (Join-Path $PSScriptRoot '..')
    $rows = [Collections.Generic.List[string]]::new()
    $rows.Add('| set | tool | median | runs (s) | vs ours |')
    $rows.Add('|---|---|---:|---|---:|')
    $sets = @(
        @{ Name = 'a'; Label = '(a) 2,000 x 64 KiB'; Count = 2000; Size = 64KB }
        @{ Name = 'b'; Label = '(b) 200 x 4 MiB'; Count = 200; Size = 4MB }
        @{ Name = 'c'; Label = '(c) 2 x 1 GiB'; Count = 2; Size = 1GB }
        @{ Name = 'd'; Label = '10,000 x 4 KiB'; Count = 10000; Size = 4KB }
    )
    $n = 0
    foreach ($set in $sets) {
        $src = Join-Path $work "src-$($set.Name)"
        Write-Host "Writing $($set.Label)..."
        New-Set $src $set.Count $set.Size
        $ours = foreach ($i in 1..$Runs) { (Invoke-Capture $s3 $src ("cap-$($set.Name)-$i")).Seconds }
        $aws = foreach ($i in 1..$Runs) { $n++; (Measure-Median { Invoke-Peer $peers.Aws @('s3', 'cp', '--recursive', '--only-show-errors', '--endpoint-url', $Endpoint, $src, "s3://$Bucket/peer-aws-$n") $peers.Env } -Runs 1 -NoWarmup).Median }
        $rclone = foreach ($i in 1..$Runs) { $n++; (Measure-Median { Invoke-Peer 'rclone' @('copy', '--transfers', '16', $src, "s3rver:$Bucket/peer-rclone-$n") $peers.Env } -Runs 1 -NoWarmup).Median }
        $m = Get-Median $ours
        foreach ($r in @(@{ T = 'Invoke-GridExperiment: exit to final status'; V = $ours }, @{ T = 'aws s3 cp --recursive (whole upload)'; V = $aws }, @{ T = 'rclone copy --transfers 16 (whole upload)'; V = $rclone })) {
            $med = Get-Median $r.V
            $rows.Add("| $($set.Label) | $($r.T) | $(Format-Seconds $med) | $(($r.V | Sort-Object | ForEach-Object { '{0:0.00}' -f $_ }) -join ', ') | $('{0:0.00}x' -f ($med / $m)) |")
        }
        Remove-Item -Recurse -Force $src
    }

    Write-Host 'Memory: one 3 GiB file, then six 1.5 GiB files at once...'
    $mem = [Collections.Generic.List[string]]::new()
    $big = Join-Path $work 'src-3g'; New-Set $big 1 3GB
    $r = Invoke-Capture (Join-Path $work 'store-mem') $big 'mem-3g'
    $mem.Add("| one 3 GiB file | $('{0:0}' -f $r.IdleMiB) MiB | $('{0:0}' -f $r.PeakMiB) MiB | $('{0:+0}' -f ($r.PeakMiB - $r.IdleMiB)) MiB | 50 MiB |")
    Remove-Item -Recurse -Force $big
    $six = Join-Path $work 'src-6x'; New-Set $six 1 1536MB
    foreach ($i in 1..5) { & ln (Join-Path $six 'f0000.bin') (Join-Path $six ('f{0:D4}.bin' -f $i)) }
    $r = Invoke-Capture $s3 $six 'mem-6x'
    $mem.Add("| six 1.5 GiB files at once (s3rver) | $('{0:0}' -f $r.IdleMiB) MiB | $('{0:0}' -f $r.PeakMiB) MiB | $('{0:+0}' -f ($r.PeakMiB - $r.IdleMiB)) MiB | 200 MiB |")
    Remove-Item -Recurse -Force $six

    Write-Host 'Latency: last write to arrival in the local store...'
    $store = Join-Path $work 'store-latency'
    $log = Join-Path $work 'writes.txt'
    $wd = Join-Path $work 'wd-latency'
    Import-Module $ModulePath
    $null = Invoke-GridExperiment -Run latency -Store $store -WorkingDirectory $wd -- bash -c "for i in `$(seq 1 30); do head -c 100000 /dev/urandom > f`$i.bin; echo f`$i.bin `$(date +%s.%N) >> '$log'; sleep 0.4; done; sleep 4"
    $lat = foreach ($line in Get-Content $log) {
        $name, $t = $line.Split(' ')
        $arrived = [IO.File]::GetLastWriteTimeUtc((Join-Path $store "runs/latency/exp0/artifacts/$name"))
        ([DateTimeOffset]$arrived).ToUnixTimeMilliseconds() / 1000 - [double]$t
    }
    $sorted = @($lat | Sort-Object)
    $p95 = $sorted[[int][math]::Ceiling(0.95 * $sorted.Count) - 1]

    $body = ($rows -join "`n") + "`n`nOurs is the time from the script's exit (its last act writes a timestamp) to the experiment's final status: the final sync, the sealed manifest and the status record. The script copies the set into its folder and exits, so the agent syncs what settled during the copy and the rest at the end. Peers upload the same folder from scratch to a fresh prefix, which is what a script without an agent would have to do at exit.`n`n" +
        "| agent memory | idle | peak | above idle | target |`n|---|---:|---:|---:|---:|`n" + ($mem -join "`n") +
        "`n`n| last write to arrival (local store, 30 files) | median | p95 | target p95 |`n|---|---:|---:|---:|`n| settle 1 s, rescan 1 s | $(Format-Seconds (Get-Median $lat)) | $(Format-Seconds $p95) | 3 s |`n`nMeasured $(Get-Date -Format 'yyyy-MM-dd'), $Runs runs each."
    Write-ResultsSection -Path $ResultsPath -Title 'Capture' -Body $body
    Write-Host $body
}
finally {
    Pop-Location
    Remove-Item -Recurse -Force $work -ErrorAction Ignore
}
