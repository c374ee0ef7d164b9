<#
.SYNOPSIS
    What the hostile-folder checks cost: capture, import and save of 2,000 files of
    64 KiB, on the folder store and on s3rver, with this build against an earlier one (0.4.0, which
    read files by path with no checks), interleaved, each in a fresh pwsh, in-session time; rclone
    copy of the same set to and from s3rver in the same run for scale. Then a hostile folder (links
    out, loops, a FIFO, a link to /dev/zero) under each build: how long until the experiment ends.
.PARAMETER OldModulePath
    The earlier build's staged module (build.ps1 -Task Build at 0.4.0's commit); also from
    $env:GRID_BENCH_OLD_MODULE. Without one, only this build is measured.
.EXAMPLE
    dotnet pwsh ./bench/Hostile.Bench.ps1 -ModulePath ./out/GridArtifacts -OldModulePath /tmp/grid-0.4.0/out/GridArtifacts -Endpoint http://127.0.0.1:9000 -Bucket grid-bench
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Endpoint,
    [Parameter(Mandatory)] [string] $Bucket,
    [string] $OldModulePath = $env:GRID_BENCH_OLD_MODULE,
    [int] $Runs = 3,
    [string] $ResultsPath = (Join-Path $PSScriptRoot 'results.md'),
    [switch] $NoResults
)
$ErrorActionPreference = 'Stop'
. (Join-Path $PSScriptRoot 'BenchCommon.ps1')
$work = Join-Path ([IO.Path]::GetTempPath()) "grid-bench-hostile-$([guid]::NewGuid().ToString('N'))"
$source = Join-Path $work 'set'
New-Item -ItemType Directory -Force -Path $source | Out-Null
$buffer = [byte[]]::new(64KB)
$rnd = [Random]::new(24)
foreach ($i in 0..1999) { $rnd.NextBytes($buffer); [IO.File]::WriteAllBytes((Join-Path $source ('f{0:D4}.bin' -f $i)), $buffer) }

$builds = @([pscustomobject]@{ Name = 'this build'; Module = (Resolve-Path $ModulePath).Path })
if ($OldModulePath) { $builds += [pscustomobject]@{ Name = '0.4.0'; Module = (Resolve-Path $OldModulePath).Path } }
$stores = [ordered]@{ folder = $null; s3rver = "s3://$Bucket/hostile?endpoint=$([uri]::EscapeDataString($Endpoint))" }
$peer = Get-PeerSetup $Endpoint

function Invoke-Timed([string] $Module, [string] $Store, [string] $Body) { Invoke-TimedStep $Module $Store $Body $work }
function Get-Median([double[]] $t) { Get-MedianOf $t }

$times = @{}
function Add-Time([string] $Key, [double] $Seconds) { if (-not $times[$Key]) { $times[$Key] = [Collections.Generic.List[double]]::new() }; $times[$Key].Add($Seconds) }

$n = 0
foreach ($run in 1..$Runs) {
    foreach ($storeName in $stores.Keys) {
        foreach ($b in $builds) {
            $n++
            $store = if ($stores[$storeName]) { $stores[$storeName] } else { Join-Path $work "store-$n" }
            $runName = "bench-$n"
            $cwd = Join-Path $work "cwd-$n"
            $dest = Join-Path $work "dest-$n"
            New-Item -ItemType Directory -Force -Path $cwd | Out-Null
            sync
            Add-Time "$storeName|capture|$($b.Name)" (Invoke-Timed $b.Module $store "Set-Location '$cwd'; Invoke-GridExperiment -Run $runName -Experiment exp0 -- cp -r '$source' ./set | Out-Null")
            sync
            Add-Time "$storeName|import|$($b.Name)" (Invoke-Timed $b.Module $store "Import-GridArtifact -Path '$source' -Run $runName -Experiment exp1 | Out-Null")
            sync
            Add-Time "$storeName|save|$($b.Name)" (Invoke-Timed $b.Module $store "Get-GridArtifact $runName-exp1 | Save-GridArtifact -Destination '$dest' | Out-Null")
            $saved = Get-ChildItem -Recurse -File $dest
            if ($saved.Count -ne 2000) { throw "$($b.Name) saved $($saved.Count) files of 2,000 ($storeName)" }
            Remove-Item -Recurse -Force $cwd, $dest
        }
    }
    # rclone at its defaults, to and from the same server, for scale.
    $prefix = "s3rver:$Bucket/rclone-$run"
    $back = Join-Path $work "rclone-$run"
    sync
    $sw = [Diagnostics.Stopwatch]::StartNew(); Invoke-Peer rclone @('copy', $source, $prefix) $peer.Env | Out-Null; Add-Time 's3rver|import|rclone copy' $sw.Elapsed.TotalSeconds
    sync
    $sw = [Diagnostics.Stopwatch]::StartNew(); Invoke-Peer rclone @('copy', $prefix, $back) $peer.Env | Out-Null; Add-Time 's3rver|save|rclone copy' $sw.Elapsed.TotalSeconds
    Remove-Item -Recurse -Force $back
}

# A hostile folder: links out, a loop, a FIFO and /dev/zero; how long until the experiment ends (60 s at most).
$hostile = @'
ln -s /etc/hostname h; ln -s .. parent-link; mkdir loop; ln -s .. loop/up; ln -s . a; ln -s . b
mkfifo pipe; ln -s /dev/zero zero.bin; echo fine > fine.txt
'@
$hostileRows = foreach ($b in $builds) {
    $cwd = Join-Path $work "hostile-$($b.Name -replace '\W', '')"
    New-Item -ItemType Directory -Force -Path $cwd | Out-Null
    Set-Content -Path (Join-Path $work 'hostile.sh') -Value $hostile
    $store = Join-Path $work "hostile-store-$($b.Name -replace '\W', '')"
    $job = Start-Job { param($m, $s, $c, $f) & dotnet pwsh -NoProfile -NonInteractive -Command "Import-Module '$m'; Set-Location '$c'; `$sw = [Diagnostics.Stopwatch]::StartNew(); Invoke-GridExperiment -Run hostile -Experiment exp0 -Store '$s' -WarningAction SilentlyContinue -- bash '$f' | Out-Null; 'ELAPSED ' + `$sw.Elapsed.TotalSeconds" } -ArgumentList $b.Module, $store, $cwd, (Join-Path $work 'hostile.sh')
    $done = Wait-Job $job -Timeout 60
    $out = if ($done) { Receive-Job $job | ForEach-Object { "$_" } } else { @() }
    $line = $out | Where-Object { $_ -like 'ELAPSED *' } | Select-Object -Last 1
    $artifacts = (Get-ChildItem -Recurse -File (Join-Path $store 'runs/hostile/exp0/artifacts') -ErrorAction Ignore).Count
    Get-Process -ErrorAction Ignore | Where-Object { $_.CommandLine -like "*$cwd*" -or $_.CommandLine -like "*$store*" -or $_.CommandLine -like "*hostile.sh*" } | Stop-Process -Force -ErrorAction Ignore
    Remove-Job $job -Force
    "| $($b.Name) | $(if ($line) { '{0:0.0} s' -f [double]$line.Substring(8) } else { 'had not ended after 60 s (stopped)' }) | $artifacts |"
}

$rows = foreach ($storeName in $stores.Keys) {
    foreach ($step in 'capture', 'import', 'save') {
        $ours = $times["$storeName|$step|this build"]
        foreach ($name in @($builds.Name) + 'rclone copy') {
            $t = $times["$storeName|$step|$name"]
            if (-not $t) { continue }
            $m = Get-Median $t
            "| $storeName | $step | $name | $(Format-Seconds $m) | $(($t | Sort-Object | ForEach-Object { '{0:0.00}' -f $_ }) -join ', ') | $('{0:0.00}x' -f ($m / (Get-Median $ours))) |"
        }
    }
}
$body = @"
| store | 2,000 x 64 KiB | build | median | runs (s) | vs this build |
|---|---|---|---:|---|---:|
$($rows -join "`n")

Capture is Invoke-GridExperiment over ``cp -r`` of the set (script start to final status), import is
Import-GridArtifact of the set into a new experiment, save is Get-GridArtifact piped to
Save-GridArtifact into a new folder; each in a fresh pwsh, timed inside it after the import of the
module; builds interleaved, a ``sync`` before each step. rclone copy (defaults) uploads and downloads
the same set on the same server, whole process. This build opens each file once (O_PATH, its type and
real path checked, then reopened through the descriptor) and reads it by offset; 0.4.0 looked the
path up three times and read it by name.

| a hostile folder (links out, loops, a FIFO, ``/dev/zero``) | script start to final status | artifacts stored |
|---|---|---:|
$($hostileRows -join "`n")

Measured $(Get-Date -Format 'yyyy-MM-dd'), $Runs runs each, on the shared 2-core machine.
"@
Write-Host $body
if (-not $NoResults) { Write-ResultsSection -Path $ResultsPath -Title 'Hostile folders: what the checks cost' -Body $body }
Remove-Item -Recurse -Force $work -ErrorAction Ignore
