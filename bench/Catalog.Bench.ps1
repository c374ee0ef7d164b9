<#
.SYNOPSIS
    Catalog at scale (issue 2/5): Get-GridRun as the first call of a fresh session, and the artifacts
    page's first load of the run list, over 1,000 and 10,000 runs of 4 experiments on s3rver and
    100,000 runs of 4 experiments on a local folder store; with the HTTP requests each makes on s3rver.
.DESCRIPTION
    Each module build given (-ModulePath, and -OldModulePath labelled 0.1.0) seeds its own stores with
    its own code (GridCatalog.WriteRunRecordAsync and WriteExperimentRecordAsync, in parallel
    batches), so each is timed over the layout it writes. Every figure is one call in a fresh pwsh:
    the process imports the module and times only the call (a Stopwatch around it), and the count
    it returns is checked. The S3 stores are addressed through bench/count-proxy.mjs, a counting
    reverse proxy in front of s3rver, which is reset before each process and read after it.
.PARAMETER ModulePath
    The module build to measure (its psd1 or folder).
.PARAMETER OldModulePath
    A second build timed in the same run, reported in the 0.1.0 columns.
.PARAMETER Endpoint
    s3rver's endpoint, http://127.0.0.1:PORT (build.ps1 -Task Bench starts it).
.PARAMETER Sizes
    Which data sets: 1000 and 10000 (runs on s3rver), 100000 (runs in a local folder store).
.PARAMETER Runs
    Fresh processes per figure; the median is reported.
.PARAMETER NoResults
    Prints the table without writing it to -ResultsPath.
.EXAMPLE
    dotnet pwsh ./build.ps1 -Task Bench -BenchFilter Catalog*
.EXAMPLE
    dotnet pwsh ./bench/Catalog.Bench.ps1 -ModulePath ./out/GridArtifacts -OldModulePath /tmp/grid-0.1.0/out/GridArtifacts -Endpoint http://127.0.0.1:9000 -Bucket grid-bench -Sizes 1000 -NoResults
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Endpoint,
    [Parameter(Mandatory)] [string] $Bucket,
    [string] $OldModulePath,
    [ValidateSet(1000, 10000, 100000)] [int[]] $Sizes = @(1000, 10000, 100000),
    [int] $Runs = 3,
    [string] $ResultsPath = (Join-Path $PSScriptRoot 'results.md'),
    [switch] $NoResults
)
$ErrorActionPreference = 'Stop'
. (Join-Path $PSScriptRoot 'BenchCommon.ps1')

$work = Join-Path ([IO.Path]::GetTempPath()) "grid-bench-catalog-$([guid]::NewGuid().ToString('N'))"
New-Item -ItemType Directory -Path $work | Out-Null
$experiments = 4
$sets = @(
    @{ Runs = 1000; Kind = 's3rver'; Label = '1,000 runs x 4 experiments'; Seconds = 1; Requests = 10 }
    @{ Runs = 10000; Kind = 's3rver'; Label = '10,000 runs x 4 experiments'; Seconds = 5; Requests = $null }
    @{ Runs = 100000; Kind = 'local store'; Label = '100,000 runs x 4 experiments'; Seconds = 2; Requests = $null }
) | Where-Object { $_.Runs -in $Sizes }
$builds = @([pscustomobject]@{ Label = 'new'; Path = (Resolve-Path $ModulePath).Path })
if ($OldModulePath) { $builds += [pscustomobject]@{ Label = '0.1.0'; Path = (Resolve-Path $OldModulePath).Path } }

# The pwsh running this script, for the fresh sessions (under `dotnet pwsh` the process is dotnet and pwsh.dll is in $PSHOME).
$pwsh = if ((Split-Path -Leaf ([Environment]::ProcessPath)) -like 'pwsh*') { @([Environment]::ProcessPath) } else { @([Environment]::ProcessPath, (Join-Path $PSHOME 'pwsh.dll')) }

# ---- what the fresh sessions run -----------------------------------------------------------------

# Writes $Count runs of $Experiments experiments with the build's own catalog, 64 writes at a time.
$seedScript = {
    param([string] $ModulePath, [string] $Store, [int] $Count, [int] $Experiments)
    $ErrorActionPreference = 'Stop'
    Import-Module $ModulePath
    $null = Get-GridStore   # loads the engine into the module's load context
    $core = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'GridArtifacts.Core' } | Select-Object -First 1
    $runType = $core.GetType('GridArtifacts.Core.Stores.RunRecord', $true)
    $experimentType = $core.GetType('GridArtifacts.Core.Stores.ExperimentRecord', $true)
    $catalog = $core.GetType('GridArtifacts.Core.Stores.StoreSettings', $true)::Open($Store)   # as the cmdlets open -Store
    $none = [Threading.CancellationToken]::None
    $first = [DateTimeOffset]::UtcNow.AddHours(-$Count - 1)
    $batch = 64
    $sw = [Diagnostics.Stopwatch]::StartNew()
    $shown = 0
    for ($start = 0; $start -lt $Count; $start += $batch) {
        $names = @($start..([math]::Min($start + $batch, $Count) - 1) | ForEach-Object { 'bench-{0:D6}' -f $_ })
        # Run records first, then each experiment of the batch's runs, 64 at a time.
        $tasks = foreach ($i in 0..($names.Count - 1)) {
            $record = @{ Name = $names[$i]; Created = $first.AddHours($start + $i); Command = 'python train.py' } -as $runType
            $catalog.WriteRunRecordAsync($record, $none)
        }
        [Threading.Tasks.Task]::WaitAll([Threading.Tasks.Task[]] @($tasks))
        foreach ($e in 0..($Experiments - 1)) {
            $tasks = foreach ($i in 0..($names.Count - 1)) {
                $created = $first.AddHours($start + $i)
                $record = @{ Run = $names[$i]; Experiment = "exp$e"; Status = 'Succeeded'; ExitCode = 0; Created = $created
                    Started = $created.AddMinutes(1); Finished = $created.AddMinutes(5); Heartbeat = $created.AddMinutes(5) } -as $experimentType
                $record.Parameters['lr'] = "0.$e"
                $catalog.WriteExperimentRecordAsync($record, $none)
            }
            [Threading.Tasks.Task]::WaitAll([Threading.Tasks.Task[]] @($tasks))
        }
        $done = $start + $names.Count
        if ($sw.Elapsed.TotalSeconds - $shown -ge 15 -or $done -eq $Count) {
            $shown = $sw.Elapsed.TotalSeconds
            Write-Host ('    {0:N0} of {1:N0} runs written ({2:0} s)' -f $done, $Count, $shown)
        }
    }
}

# Get-GridRun as the session's first call.
$listScript = {
    param([string] $ModulePath, [string] $Store, [int] $Expected, [int] $Experiments)
    $ErrorActionPreference = 'Stop'
    Import-Module $ModulePath
    $sw = [Diagnostics.Stopwatch]::StartNew()
    $runs = @(Get-GridRun -Store $Store)
    $seconds = $sw.Elapsed.TotalSeconds
    $bad = @($runs | Where-Object { $_.ExperimentCount -ne $Experiments -or "$($_.Status)" -ne 'Succeeded' }).Count
    if ($runs.Count -ne $Expected -or $bad) { throw "Get-GridRun returned $($runs.Count) runs ($bad not Succeeded with $Experiments experiments); expected $Expected." }
    "RESULT $seconds $($runs.Count)"
}

# The artifacts page's first load of the run list, right after the server starts.
$pageScript = {
    param([string] $ModulePath, [string] $Store, [int] $Expected, [int] $Experiments)
    $ErrorActionPreference = 'Stop'
    Import-Module $ModulePath
    $server = Start-GridArtifactServer -Store $Store
    try {
        $client = [Net.Http.HttpClient]::new([Net.Http.HttpClientHandler]::new())
        $client.Timeout = [TimeSpan]::FromMinutes(30)
        $null = $client.GetAsync($server.PageUrl).GetAwaiter().GetResult().EnsureSuccessStatusCode()   # trades the token for the cookie
        $sw = [Diagnostics.Stopwatch]::StartNew()
        $response = $client.GetAsync([uri]::new($server.Url, 'api/runs')).GetAwaiter().GetResult()
        $body = $response.EnsureSuccessStatusCode().Content.ReadAsStringAsync().GetAwaiter().GetResult()
        $seconds = $sw.Elapsed.TotalSeconds
        $list = $body | ConvertFrom-Json
        $bad = @($list.runs | Where-Object { $_.experiments -ne $Experiments -or $_.status -ne 'Succeeded' }).Count
        if ($list.runs.Count -ne $Expected -or $bad -or $list.errors) { throw "The page's api/runs listed $($list.runs.Count) runs ($bad not Succeeded with $Experiments experiments, $(@($list.errors).Count) errors); expected $Expected." }
        "RESULT $seconds $($list.runs.Count)"
    }
    finally { Stop-GridArtifactServer -Store $Store }
}

foreach ($name in 'seed', 'list', 'page') { Set-Content (Join-Path $work "$name.ps1") (Get-Variable "${name}Script" -ValueOnly).ToString() }

function Invoke-Fresh {
    <# Runs one of the scripts above in a fresh pwsh and returns its output (-Stream: shows it as it comes), failing loudly. #>
    param([string] $Name, [hashtable] $Arguments, [switch] $Stream)
    $argv = @('-NoProfile', '-NonInteractive', '-File', (Join-Path $work "$Name.ps1"))
    foreach ($k in $Arguments.Keys) { $argv += "-$k"; $argv += [string]$Arguments[$k] }
    $exe = $pwsh[0]
    $rest = @($pwsh | Select-Object -Skip 1)
    $out = if ($Stream) { & $exe @rest @argv | Out-Host } else { & $exe @rest @argv }
    if ($LASTEXITCODE -ne 0) { throw "The fresh session ($Name.ps1 $($Arguments.Store)) failed ($LASTEXITCODE): $($out -join "`n")" }
    $out
}

# ---- the counting proxy in front of s3rver --------------------------------------------------------

function Start-CountProxy {
    $psi = [Diagnostics.ProcessStartInfo]::new('node')
    foreach ($a in @((Join-Path $PSScriptRoot 'count-proxy.mjs'), '--target', $Endpoint)) { $psi.ArgumentList.Add($a) }
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    $process = [Diagnostics.Process]::Start($psi)
    $line = $process.StandardOutput.ReadLineAsync()
    if (-not $line.Wait(15000) -or -not $line.Result) { $process.Kill(); throw "count-proxy did not start: $($process.StandardError.ReadToEnd())" }
    $ports = $line.Result | ConvertFrom-Json
    [pscustomobject]@{ Process = $process; Endpoint = "http://127.0.0.1:$($ports.port)"; Control = "http://127.0.0.1:$($ports.control)" }
}

function Measure-Fresh {
    <# $Runs fresh sessions of one script; the median of the in-process times, and the requests each made through the proxy. #>
    param([string] $Name, $Build, [string] $Store, [int] $Expected, [bool] $Counted, [string] $What)
    $results = foreach ($i in 1..$Runs) {
        if ($Counted) { $null = Invoke-RestMethod -Method Post "$($proxy.Control)/__reset" }
        $line = @(Invoke-Fresh $Name @{ ModulePath = $Build.Path; Store = $Store; Expected = $Expected; Experiments = $experiments }) -match '^RESULT ' | Select-Object -Last 1
        if (-not $line) { throw "The fresh session ($Name.ps1) printed no result." }
        $seconds, $count = ($line -split ' ')[1, 2]
        $requests = if ($Counted) { [int](Invoke-RestMethod "$($proxy.Control)/__count").count } else { $null }
        Write-Host ('    {0} [{1}] run {2}: {3:0.000} s, {4:N0} runs{5}' -f $What, $Build.Label, $i, [double]$seconds, [int]$count, $(if ($Counted) { ', {0:N0} requests' -f $requests } else { '' }))
        [pscustomobject]@{ Seconds = [double]$seconds; Requests = $requests }
    }
    $sorted = @($results.Seconds | Sort-Object)
    $median = if ($sorted.Count % 2) { $sorted[[int][math]::Floor($sorted.Count / 2)] } else { ($sorted[$sorted.Count / 2 - 1] + $sorted[$sorted.Count / 2]) / 2 }
    $counts = @($results.Requests | Where-Object { $null -ne $_ })
    [pscustomobject]@{ Median = $median; Times = $sorted; Requests = $counts | Select-Object -First 1; RequestRange = ($counts | Measure-Object -Minimum -Maximum) }
}

function Format-Requests($m) {
    if ($null -eq $m -or $null -eq $m.Requests) { return '–' }
    $text = '{0:N0}' -f $m.Requests
    if ($m.RequestRange.Minimum -ne $m.RequestRange.Maximum) { $text += ' ({0:N0}–{1:N0})' -f $m.RequestRange.Minimum, $m.RequestRange.Maximum }
    $text
}

function Get-BuildName([string] $Path) {
    <# The manifest's version and, when the build sits in a git work tree, its commit. #>
    $psd1 = if ($Path -like '*.psd1') { $Path } else { Join-Path $Path 'GridArtifacts.psd1' }
    $version = (Import-PowerShellDataFile $psd1).ModuleVersion
    $commit = git -C (Split-Path $psd1) rev-parse --short HEAD 2>$null
    if ($LASTEXITCODE -eq 0 -and $commit) { "$version ($commit)" } else { $version }
}

# ---- seed, then time -------------------------------------------------------------------------------

$proxy = $null
try {
    $proxy = Start-CountProxy
    $stores = @{}
    $seeding = [Collections.Generic.List[string]]::new()
    foreach ($build in $builds) {
        foreach ($set in $sets) {
            $id = "catalog-$($build.Label -replace '\W', '')-$($set.Runs)-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
            # Seeded straight to s3rver, timed through the proxy: the keys are the same either way.
            $direct, $timed = if ($set.Kind -eq 's3rver') {
                foreach ($e in $Endpoint, $proxy.Endpoint) { "s3://$Bucket/$($id)?endpoint=$([uri]::EscapeDataString($e))" }
            }
            else { $folder = Join-Path $work $id; $folder, $folder }
            Write-Host "Seeding $($set.Label), $($set.Kind), with the $($build.Label) build ($($build.Path))..."
            $sw = [Diagnostics.Stopwatch]::StartNew()
            Invoke-Fresh 'seed' @{ ModulePath = $build.Path; Store = $direct; Count = $set.Runs; Experiments = $experiments } -Stream
            $seeding.Add(('{0}, {1}, {2} build: {3:0} s' -f $set.Label, $set.Kind, $build.Label, $sw.Elapsed.TotalSeconds))
            Write-Host "  $($seeding[-1])"
            $stores["$($build.Label)/$($set.Runs)"] = $timed
        }
    }

    $rows = [Collections.Generic.List[string]]::new()
    $rows.Add('| what | store | size | median | runs (s) | requests (first call) | 0.1.0 median | 0.1.0 requests | target |')
    $rows.Add('|---|---|---|---:|---|---:|---:|---:|---|')
    foreach ($set in $sets) {
        foreach ($what in @(@{ Script = 'list'; Label = 'Get-GridRun, first call of a fresh session' }, @{ Script = 'page'; Label = "artifacts page: runs list, first load" })) {
            $m = @{}
            foreach ($build in $builds) {
                Write-Host "Timing $($what.Label), $($set.Label), $($set.Kind), $($build.Label) build..."
                $m[$build.Label] = Measure-Fresh $what.Script $build $stores["$($build.Label)/$($set.Runs)"] $set.Runs ($set.Kind -eq 's3rver') $what.Label
            }
            $ours = $m['new']
            $old = $m['0.1.0']
            $target = "<= $($set.Seconds) s" + $(if ($set.Requests) { ", <= $($set.Requests) requests" })
            $met = $ours.Median -le $set.Seconds -and (-not $set.Requests -or $ours.Requests -le $set.Requests)
            $rows.Add("| $($what.Label) | $($set.Kind) | $($set.Label) | $(Format-Seconds $ours.Median) | $(($ours.Times | ForEach-Object { '{0:0.00}' -f $_ }) -join ', ') | $(Format-Requests $ours) | $(if ($old) { Format-Seconds $old.Median } else { '–' }) | $(Format-Requests $old) | $target$(if ($met) { ': met' } else { ': missed' }) |")
        }
    }

    $names = "median and requests: GridArtifacts $(Get-BuildName $builds[0].Path)" + $(if ($builds.Count -gt 1) { "; 0.1.0 columns: GridArtifacts $(Get-BuildName $builds[1].Path)" } else { '; no 0.1.0 build in this run' })
    $lines = @($rows) + @('',
        "Measured $(Get-Date -Format 'yyyy-MM-dd'), medians of $Runs runs, $names. Each figure is one call in a fresh pwsh (-NoProfile): the process imports the module and a Stopwatch times only the call, Get-GridRun -Store, or, after Start-GridArtifactServer -Store and the token-for-cookie request, the page's first GET of api/runs (what the browser waits for before it lists anything). Each call's count of runs (and of Succeeded runs with 4 experiments) is checked. Requests are every HTTP request the process made to s3rver, counted by bench/count-proxy.mjs, a Node reverse proxy on loopback through which the S3 stores are addressed in every timed run (it adds its own hop to each request); the local store makes none. Each build seeded its own stores with its own code (GridCatalog.WriteRunRecordAsync and WriteExperimentRecordAsync, 64 at a time): $($seeding -join '; ').")
    $body = $lines -join "`n"
    if (-not $NoResults) { Write-ResultsSection -Path $ResultsPath -Title 'Catalog at scale (issue 2/5)' -Body $body }
    Write-Host $body
}
finally {
    if ($proxy -and -not $proxy.Process.HasExited) { $proxy.Process.Kill(); $proxy.Process.WaitForExit(5000) | Out-Null }
    # Directory.Delete, not Remove-Item: the 100,000-run stores are 500,000 files each.
    try { [IO.Directory]::Delete($work, $true) } catch { Write-Warning "Could not remove $($work): $_" }
}
