<#
.SYNOPSIS
    What a fresh working folder per run costs: an experiment of 2,000 files of 64 KiB
    under Invoke-GridExperiment with -RemoveWorkingDirectory (the folder removed after its final
    sync, as Start-GridRun does) against without, on the folder store and on s3rver, interleaved,
    each in a fresh pwsh, in-session time; rm -rf of the same folder and rclone copy of the set for
    scale. Then the two scans at scale: Start-GridRun in a work root holding 100,000 folders earlier
    releases left (it reports them) against an empty one, and Remove-GridWorkingDirectory over 1,000
    run folders.
.EXAMPLE
    dotnet pwsh ./bench/WorkingFolders.Bench.ps1 -ModulePath ./out/GridArtifacts -Endpoint http://127.0.0.1:9000 -Bucket grid-bench
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Endpoint,
    [Parameter(Mandatory)] [string] $Bucket,
    [int] $Runs = 3,
    [int] $EarlierFolders = 100000,
    [string] $ResultsPath = (Join-Path $PSScriptRoot 'results.md'),
    [switch] $NoResults
)
$ErrorActionPreference = 'Stop'
. (Join-Path $PSScriptRoot 'BenchCommon.ps1')
$module = (Resolve-Path $ModulePath).Path
$work = Join-Path ([IO.Path]::GetTempPath()) "grid-bench-folders-$([guid]::NewGuid().ToString('N'))"
$source = Join-Path $work 'set'
New-Item -ItemType Directory -Force -Path $source | Out-Null
$buffer = [byte[]]::new(64KB)
$rnd = [Random]::new(25)
foreach ($i in 0..1999) { $rnd.NextBytes($buffer); [IO.File]::WriteAllBytes((Join-Path $source ('f{0:D4}.bin' -f $i)), $buffer) }
$stores = [ordered]@{ folder = $null; s3rver = "s3://$Bucket/folders?endpoint=$([uri]::EscapeDataString($Endpoint))" }
$peer = Get-PeerSetup $Endpoint

function Invoke-Timed([string] $Store, [string] $Body) { Invoke-TimedStep $module $Store $Body $work }
function Get-Median([double[]] $t) { Get-MedianOf $t }
$times = @{}
function Add-Time([string] $Key, [double] $Seconds) { if (-not $times[$Key]) { $times[$Key] = [Collections.Generic.List[double]]::new() }; $times[$Key].Add($Seconds) }

$n = 0
foreach ($run in 1..$Runs) {
    foreach ($storeName in $stores.Keys) {
        foreach ($mode in 'removed', 'kept') {
            $n++
            $store = if ($stores[$storeName]) { $stores[$storeName] } else { Join-Path $work "store-$n" }
            $folder = Join-Path $work "wd-$n"
            $switch = if ($mode -eq 'removed') { '-RemoveWorkingDirectory' } else { '' }
            sync
            Add-Time "$storeName|$mode" (Invoke-Timed $store "Invoke-GridExperiment -Run bench-$n -WorkingDirectory '$folder' $switch -- cp -r '$source' ./set | Out-Null")
            $left = Test-Path $folder
            if ($left -ne ($mode -eq 'kept')) { throw "$mode, $storeName : the folder is $(if ($left) { 'still there' } else { 'gone' })." }
            if ($mode -eq 'kept') {
                sync
                $sw = [Diagnostics.Stopwatch]::StartNew(); rm -rf $folder; Add-Time "$storeName|rm -rf" $sw.Elapsed.TotalSeconds
            }
        }
    }
    sync
    $sw = [Diagnostics.Stopwatch]::StartNew(); Invoke-Peer rclone @('copy', $source, "s3rver:$Bucket/rclone-$run") $peer.Env | Out-Null; Add-Time 's3rver|rclone copy' $sw.Elapsed.TotalSeconds
}

# The scans at scale: a work root of $EarlierFolders folders as releases before 0.4.2 left them.
$crowded = Join-Path $work 'crowded'
$empty = Join-Path $work 'empty'
New-Item -ItemType Directory -Force -Path $crowded, $empty | Out-Null
$plan = '{"Run":"x","Store":"' + (Join-Path $work 'scan-store') + '"}'
foreach ($i in 0..($EarlierFolders - 1)) {
    $d = [IO.Directory]::CreateDirectory((Join-Path $crowded ('old-run-{0}' -f $i))).FullName
    [IO.File]::WriteAllText((Join-Path $d 'plan.json'), $plan.Replace('"x"', ('"old-run-{0}"' -f $i)))
}
$scanStore = Join-Path $work 'scan-store'
foreach ($run in 1..$Runs) {
    foreach ($root in $empty, $crowded) {
        sync
        Add-Time "scan|$root" (Invoke-Timed $scanStore "Start-GridRun -Command 'true' -WorkingRoot '$root' -WarningAction SilentlyContinue | Out-Null")
    }
}
# Remove-GridWorkingDirectory over 1,000 of them (runs the store no longer has: each asked once).
$some = Join-Path $work 'some'
New-Item -ItemType Directory -Force -Path $some | Out-Null
foreach ($i in 0..999) { Move-Item (Join-Path $crowded ('old-run-{0}' -f $i)) $some }
sync
Add-Time 'remove|1000' (Invoke-Timed $scanStore "Remove-GridWorkingDirectory -WorkingRoot '$some' -Confirm:`$false")
if (@(Get-ChildItem $some).Count -ne 0) { throw 'Remove-GridWorkingDirectory left folders behind.' }

$fmt = { param($t) "$(Format-Seconds (Get-Median $t)) | $(($t | Sort-Object | ForEach-Object { '{0:0.00}' -f $_ }) -join ', ')" }
$rows = foreach ($storeName in $stores.Keys) {
    $kept = Get-Median $times["$storeName|kept"]
    foreach ($mode in 'kept', 'removed', 'rm -rf') {
        $t = $times["$storeName|$mode"]
        "| $storeName | $(switch ($mode) { 'kept' { 'folder kept' } 'removed' { 'folder removed (-RemoveWorkingDirectory)' } default { 'rm -rf of the kept folder' } }) | $(& $fmt $t) | $('{0:0.00}x' -f ((Get-Median $t) / $kept)) |"
    }
}
$rows += "| s3rver | rclone copy of the set (defaults, whole process) | $(& $fmt $times['s3rver|rclone copy']) | $('{0:0.00}x' -f ((Get-Median $times['s3rver|rclone copy']) / (Get-Median $times['s3rver|kept']))) |"
$body = @"
| store | 2,000 x 64 KiB, Invoke-GridExperiment over ``cp -r`` | median | runs (s) | vs kept |
|---|---|---:|---|---:|
$($rows -join "`n")

| Start-GridRun (returns at once) | median | runs (s) |
|---|---:|---|
| empty work root | $(& $fmt $times["scan|$empty"]) |
| work root holding $('{0:N0}' -f $EarlierFolders) folders earlier releases left (reported once) | $(& $fmt $times["scan|$crowded"]) |

Remove-GridWorkingDirectory over 1,000 run folders of runs the store no longer has (each plan read,
the store asked, the folder removed): $(Format-Seconds $times['remove|1000'][0]).

Each Invoke-GridExperiment in a fresh pwsh, timed inside it after the module's import, kept and
removed interleaved, a ``sync`` before each. The removal happens after the final sync and before the
final status, so it is inside the time. Measured $(Get-Date -Format 'yyyy-MM-dd'), $Runs runs each, on
the shared 2-core machine.
"@
Write-Host $body
if (-not $NoResults) { Write-ResultsSection -Path $ResultsPath -Title 'Working folders: what a fresh folder per run costs' -Body $body }
Remove-Item -Recurse -Force $work -ErrorAction Ignore
