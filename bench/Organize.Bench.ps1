<#
.SYNOPSIS
    Organize at scale: listing, tag filters, Measure-GridStore and a clean-up's plan over
    a local folder store of 100,000 runs of 4 experiments, 10,000 of them tagged and 1,000 protected.
.DESCRIPTION
    Every figure is one call in a fresh pwsh (-NoProfile) that imports the module and times only the
    call, checking what it returns. With -OldModulePath (0.2.0), Get-GridRun is also timed with that
    build on the same store (it passes the tag keys over), so the cost of tags in the listing shows.
    Measure-GridStore -Exact is set against du -sb and rclone size of the same folder, with a sync
    before each timed tool.
.PARAMETER ModulePath
    The module build to measure.
.PARAMETER OldModulePath
    A 0.2.0 build, timed on Get-GridRun over the same store.
.PARAMETER Endpoint
    Unused (the store is a local folder); build.ps1 passes it to every benchmark.
.PARAMETER Bucket
    Unused, as -Endpoint.
.PARAMETER Count
    Runs in the store.
.PARAMETER Runs
    Fresh processes per figure; the median is reported.
.EXAMPLE
    dotnet pwsh ./build.ps1 -Task Bench -BenchFilter Organize*
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [string] $Endpoint,
    [string] $Bucket,
    [string] $OldModulePath,
    [int] $Count = 100000,
    [int] $Runs = 3,
    [string] $ResultsPath = (Join-Path $PSScriptRoot 'results.md'),
    [switch] $NoResults
)
$ErrorActionPreference = 'Stop'
. (Join-Path $PSScriptRoot 'BenchCommon.ps1')

$work = Join-Path ([IO.Path]::GetTempPath()) "grid-bench-organize-$([guid]::NewGuid().ToString('N'))"
$store = Join-Path $work 'store'
New-Item -ItemType Directory -Path $work | Out-Null
$experiments = 4
$tagged = [int]($Count / 10)
$protected = [int]($Count / 100)
$pwsh = if ((Split-Path -Leaf ([Environment]::ProcessPath)) -like 'pwsh*') { @([Environment]::ProcessPath) } else { @([Environment]::ProcessPath, (Join-Path $PSHOME 'pwsh.dll')) }

# Writes the runs with the build's own catalog, 64 at a time; every tenth run tagged keep, every hundredth protected
# (their index keys written directly: one listing of the whole store per AddTagsAsync would make the seed, not the bench, the slow part).
$seedScript = {
    param([string] $ModulePath, [string] $Store, [int] $Count, [int] $Experiments)
    $ErrorActionPreference = 'Stop'
    Import-Module $ModulePath
    $null = Get-GridStore
    $core = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'GridArtifacts.Core' } | Select-Object -First 1
    $runType = $core.GetType('GridArtifacts.Core.Stores.RunRecord', $true)
    $experimentType = $core.GetType('GridArtifacts.Core.Stores.ExperimentRecord', $true)
    $index = $core.GetType('GridArtifacts.Core.Stores.CatalogIndex', $true)
    # Catalogs.Open (0.5.0 on), StoreSettings.Open before; the writer is the catalog's part from 0.5.0 on.
    $opener = $core.GetType('GridArtifacts.Core.Catalogs'); if (-not $opener) { $opener = $core.GetType('GridArtifacts.Core.Stores.StoreSettings', $true) }
    $catalog = $opener::Open($Store)
    $writer = if ($catalog.PSObject.Properties['Writer']) { $catalog.Writer } else { $catalog }
    $none = [Threading.CancellationToken]::None
    $first = [DateTimeOffset]::UtcNow.AddHours(-$Count - 1)
    $batch = 64
    for ($start = 0; $start -lt $Count; $start += $batch) {
        $ids = @($start..([math]::Min($start + $batch, $Count) - 1))
        $tasks = foreach ($i in $ids) {
            $writer.WriteRunRecordAsync((@{ Name = 'bench-{0:D6}' -f $i; Created = $first.AddHours($i); Command = 'python train.py' } -as $runType), $none)
        }
        [Threading.Tasks.Task]::WaitAll([Threading.Tasks.Task[]] @($tasks))
        foreach ($e in 0..($Experiments - 1)) {
            $tasks = foreach ($i in $ids) {
                $created = $first.AddHours($i)
                $record = @{ Run = 'bench-{0:D6}' -f $i; Experiment = "exp$e"; Status = 'Succeeded'; ExitCode = 0; Created = $created
                    Started = $created.AddMinutes(1); Finished = $created.AddMinutes(5); Heartbeat = $created.AddMinutes(5)
                    Sync = [GridArtifacts.Model.GridSyncState]@{ FilesSynced = 10; BytesSynced = 1000 * ($i % 97) } } -as $experimentType
                $writer.WriteExperimentRecordAsync($record, $none)
            }
            [Threading.Tasks.Task]::WaitAll([Threading.Tasks.Task[]] @($tasks))
        }
        $tasks = foreach ($i in $ids) {
            $run = 'bench-{0:D6}' -f $i
            if ($i % 10 -eq 0) { $catalog.Store.PutAsync($index::RunTagKey($run, 'keep'), [ReadOnlyMemory[byte]]::Empty, $none) }
            if ($i % 100 -eq 1) { $catalog.Store.PutAsync($index::ProtectedKey($run), [ReadOnlyMemory[byte]]::Empty, $none) }
        }
        if ($tasks) { [Threading.Tasks.Task]::WaitAll([Threading.Tasks.Task[]] @($tasks)) }
        if ($start % 10000 -eq 0) { Write-Host ('    {0:N0} of {1:N0} runs written' -f $start, $Count) }
    }
}

# One call, timed in a fresh session; prints RESULT <seconds> <count> for the count the call must return.
$callScript = {
    param([string] $ModulePath, [string] $Store, [string] $Call)
    $ErrorActionPreference = 'Stop'
    Import-Module $ModulePath
    $block = [scriptblock]::Create($Call)
    $sw = [Diagnostics.Stopwatch]::StartNew()
    $out = @(& $block $Store)
    $seconds = $sw.Elapsed.TotalSeconds
    "RESULT $seconds $($out[-1])"
}

foreach ($name in 'seed', 'call') { Set-Content (Join-Path $work "$name.ps1") (Get-Variable "${name}Script" -ValueOnly).ToString() }

function Invoke-Fresh([string] $Name, [hashtable] $Arguments) {
    $argv = @('-NoProfile', '-NonInteractive', '-File', (Join-Path $work "$Name.ps1"))
    foreach ($k in $Arguments.Keys) { $argv += "-$k"; $argv += [string]$Arguments[$k] }
    $out = & $pwsh[0] @($pwsh | Select-Object -Skip 1) @argv
    if ($LASTEXITCODE -ne 0) { throw "The fresh session ($Name.ps1) failed ($LASTEXITCODE): $($out -join "`n")" }
    $out
}

function Measure-Call([string] $Path, [string] $What, [string] $Call, [string] $Expected) {
    $times = foreach ($i in 1..$Runs) {
        sync
        $line = @(Invoke-Fresh call @{ ModulePath = $Path; Store = $store; Call = $Call }) -match '^RESULT ' | Select-Object -Last 1
        $seconds, $got = ($line -split ' ', 3)[1, 2]
        if ($got -ne $Expected) { throw "$What returned '$got'; expected '$Expected'." }
        Write-Host ('    {0} run {1}: {2:0.000} s' -f $What, $i, [double]$seconds)
        [double]$seconds
    }
    $sorted = @($times | Sort-Object)
    [pscustomobject]@{ What = $What; Median = $sorted[[int][math]::Floor($sorted.Count / 2)]; Times = $sorted }
}

function Measure-Tool([string] $What, [scriptblock] $Tool) {
    $times = foreach ($i in 1..$Runs) {
        sync
        $sw = [Diagnostics.Stopwatch]::StartNew()
        & $Tool | Out-Null
        if ($LASTEXITCODE) { throw "$What failed ($LASTEXITCODE)." }
        $sw.Elapsed.TotalSeconds
    }
    $sorted = @($times | Sort-Object)
    [pscustomobject]@{ What = $What; Median = $sorted[[int][math]::Floor($sorted.Count / 2)]; Times = $sorted }
}

try {
    Write-Host "  seeding $($Count.ToString('N0')) runs x $experiments experiments ($tagged tagged keep, $protected protected)"
    $seedTime = Measure-Command { Invoke-Fresh seed @{ ModulePath = $ModulePath; Store = $store; Count = $Count; Experiments = $experiments } | Out-Host }
    # A clean-up of the oldest 1,000 runs: all but the tagged (1 in 10) and protected (1 in 100) ones go.
    $keep = $Count - 1000
    $victims = @(0..999 | Where-Object { $_ % 10 -ne 0 -and $_ % 100 -ne 1 }).Count
    $rows = @(
        Measure-Call $ModulePath 'Get-GridRun (0.3.0)' '@(Get-GridRun -Store $args[0]).Count' "$Count"
        if ($OldModulePath) { Measure-Call $OldModulePath 'Get-GridRun (0.2.0, same store)' '@(Get-GridRun -Store $args[0]).Count' "$Count" }
        Measure-Call $ModulePath 'Get-GridRun -Tag keep' '@(Get-GridRun -Store $args[0] -Tag keep).Count' "$tagged"
        Measure-Call $ModulePath 'Measure-GridStore' '(Measure-GridStore -Store $args[0]).Runs' "$Count"
        Measure-Call $ModulePath "Remove-GridRun -KeepLatest $keep -ExcludeTag keep -WhatIf -PassThru (the plan: $victims runs with their bytes)" `
            "@(Remove-GridRun -Store `$args[0] -KeepLatest $keep -ExcludeTag keep -WhatIf -PassThru -WarningAction SilentlyContinue 6>`$null).Count" "$victims"
        Measure-Call $ModulePath 'Measure-GridStore -Exact' '(Measure-GridStore -Store $args[0] -Exact).Runs' "$Count"
    )
    $runsFolder = Join-Path $store 'runs'
    $peers = @(
        Measure-Tool 'du -sb runs/ (peer of -Exact)' { du -sb $runsFolder }
        if (Get-Command rclone -ErrorAction Ignore) { Measure-Tool 'rclone size runs/ (peer of -Exact)' { env -u AWS_CA_BUNDLE rclone size $runsFolder } }
    )
    $exact = $rows | Where-Object What -eq 'Measure-GridStore -Exact'
    $lines = @('| what | median | runs (s) |', '|---|---:|---|')
    foreach ($r in $rows + $peers) { $lines += '| {0} | {1} | {2} |' -f $r.What, (Format-Seconds $r.Median), (($r.Times | ForEach-Object { '{0:0.00}' -f $_ }) -join ', ') }
    $body = ($lines -join "`n") + "`n`n" + @"
Measured $(Get-Date -Format 'yyyy-MM-dd') with bench/Organize.Bench.ps1 on a local folder store of $($Count.ToString('N0')) runs x $experiments experiments
($($tagged.ToString('N0')) tagged keep, $($protected.ToString('N0')) protected; seeded in $([int]$seedTime.TotalSeconds) s), medians of $Runs fresh sessions, sync before each.
Each figure times only the call in a fresh pwsh that has imported the module, and checks the count it returns.
Measure-GridStore -Exact against its peers: $(($peers | ForEach-Object { '{0:0.00}x the time of {1}' -f ($exact.Median / $_.Median), $_.What }) -join '; ').
"@
    Write-Host $body
    if (-not $NoResults) { Write-ResultsSection -Path $ResultsPath -Title 'Organize at scale' -Body $body }
}
finally {
    Remove-Item -Recurse -Force $work -ErrorAction Ignore
}
