<#
.SYNOPSIS
    Bandwidth cap benchmark: with Set-GridTransferOption -BandwidthLimit, the measured rate
    of a download must be within 10% of the cap. Uses the local store, so the cap, not a server, is the limit.
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [string] $Endpoint,
    [string] $Bucket,
    [string] $ResultsPath = (Join-Path $PSScriptRoot 'results.md'),
    [int] $Runs = 3
)
$ErrorActionPreference = 'Stop'
. (Join-Path $PSScriptRoot 'BenchCommon.ps1')
Import-Module $ModulePath

$work = Join-Path ([IO.Path]::GetTempPath()) "grid-bench-bw-$([guid]::NewGuid().ToString('N'))"
try {
    $src = Join-Path $work 'src'
    New-Item -ItemType Directory -Force -Path $src | Out-Null
    $bytes = [byte[]]::new(4MB)
    [Random]::new(3).NextBytes($bytes)
    foreach ($i in 0..99) { [IO.File]::WriteAllBytes((Join-Path $src ('f{0:D3}.bin' -f $i)), $bytes) }
    $store = Join-Path $work 'store'
    Import-GridArtifact -Path $src -Run bandwidth -Store $store | Out-Null
    $total = 100 * 4MB
    $before = Get-GridTransferOption
    $lines = @('| cap | median time | measured rate | off by |', '|---:|---:|---:|---:|')
    foreach ($cap in 25MB, 50MB, 100MB) {
        Set-GridTransferOption -BandwidthLimit $cap
        $m = Measure-Median { Save-GridArtifact bandwidth -Store $store -Destination (Join-Path $work ('dest-' + [guid]::NewGuid())) -ThrottleLimit 16 } -Runs $Runs -NoWarmup
        $rate = $total / $m.Median
        $lines += "| $($cap / 1MB) MiB/s | $(Format-Seconds $m.Median) | $('{0:0.0}' -f ($rate / 1MB)) MiB/s | $('{0:+0.0;-0.0;0.0}%' -f [math]::Round(100 * ($rate - $cap) / $cap, 1)) |"
    }
    Set-GridTransferOption -BandwidthLimit ([long]($before.BandwidthLimit ?? 0))
    $body = ($lines -join "`n") + "`n`n400 MiB (100 x 4 MiB) from the local store, 16 files at once, medians of $Runs runs, measured $(Get-Date -Format 'yyyy-MM-dd'). Target: within 10% of the cap."
    Write-ResultsSection -Path $ResultsPath -Title 'Bandwidth cap' -Body $body
    Write-Host $body
}
finally {
    Remove-Item -Recurse -Force $work -ErrorAction Ignore
}
