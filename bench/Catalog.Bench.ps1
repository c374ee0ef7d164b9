<#
.SYNOPSIS
    Catalog at scale: Get-GridRun as the first call of a fresh session, and the artifacts
    page's first load of the run list, over 1,000 and 10,000 runs of 4 experiments on s3rver and on
    Ceph's RADOS Gateway, and 100,000 runs of 4 experiments on a local folder store; with the HTTP
    requests each makes on the S3 servers, beside `rclone lsf -R` of the same keys.
.DESCRIPTION
    Each module build given (-ModulePath, and -OldModulePath labelled 0.1.0) seeds its own stores with
    its own code (the catalog's WriteRunRecordAsync and WriteExperimentRecordAsync, in parallel
    batches), so each is timed over the layout it writes. Every figure is one call in a fresh pwsh:
    the process imports the module and times only the call (a Stopwatch around it), and the count
    it returns is checked. The S3 stores are addressed through bench/count-proxy.mjs, a counting
    reverse proxy in front of each server, which is reset before each process and read after it.
    Each store is seeded once and every figure of it is measured over that seed; the rounds are
    interleaved (Get-GridRun, the page, rclone, then again), each after a `sync`. The RGW stores are
    removed at the end (its memstore OSD keeps everything in RAM).
.PARAMETER ModulePath
    The module build to measure (its psd1 or folder).
.PARAMETER OldModulePath
    A second build timed in the same run, reported in the 0.1.0 columns.
.PARAMETER Endpoint
    s3rver's endpoint, http://127.0.0.1:PORT (build.ps1 -Task Bench starts it).
.PARAMETER RgwEndpoint
    Ceph RGW's endpoint (build.ps1 -Task Bench starts one with tests/s3/Start-Rgw.sh); without it
    the RGW rows are skipped. The bucket -Bucket is made there when missing (and then removed).
.PARAMETER Sizes
    Which data sets: 1000 and 10000 (runs on s3rver and RGW), 100000 (runs in a local folder store).
.PARAMETER Servers
    Which stores: s3rver, RGW, local (the folder store). Each writes its own section of -ResultsPath:
    s3rver and local the catalog section, RGW the RGW one.
.PARAMETER Runs
    Fresh processes per figure; the median is reported.
.PARAMETER NoResults
    Prints the table without writing it to -ResultsPath.
.EXAMPLE
    dotnet pwsh ./build.ps1 -Task Bench -BenchFilter Catalog*
.EXAMPLE
    dotnet pwsh ./bench/Catalog.Bench.ps1 -ModulePath ./out/GridArtifacts -OldModulePath /tmp/grid-0.1.0/out/GridArtifacts -Endpoint http://127.0.0.1:9000 -Bucket grid-bench -Sizes 1000 -NoResults
.EXAMPLE
    dotnet pwsh ./bench/Catalog.Bench.ps1 -ModulePath ./out/GridArtifacts -Endpoint unused -RgwEndpoint http://127.0.0.1:7480 -Bucket grid-bench -Servers RGW
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Endpoint,
    [Parameter(Mandatory)] [string] $Bucket,
    [string] $RgwEndpoint,
    [string] $OldModulePath,
    [ValidateSet(1000, 10000, 100000)] [int[]] $Sizes = @(1000, 10000, 100000),
    [ValidateSet('s3rver', 'RGW', 'local')] [string[]] $Servers = @('s3rver', 'RGW', 'local'),
    [int] $Runs = 3,
    [string] $ResultsPath = (Join-Path $PSScriptRoot 'results.md'),
    [switch] $NoResults
)
$ErrorActionPreference = 'Stop'
. (Join-Path $PSScriptRoot 'BenchCommon.ps1')

$work = Join-Path ([IO.Path]::GetTempPath()) "grid-bench-catalog-$([guid]::NewGuid().ToString('N'))"
New-Item -ItemType Directory -Path $work | Out-Null
$experiments = 4
if ('RGW' -in $Servers -and -not $RgwEndpoint) { Write-Host 'No -RgwEndpoint: the RGW rows are skipped.' -ForegroundColor Yellow; $Servers = @($Servers | Where-Object { $_ -ne 'RGW' }) }
# The S3 servers: the endpoint each is seeded at, and how rclone names it (its provider setting).
$s3 = @{
    's3rver' = @{ Endpoint = $Endpoint; Provider = 'Other' }
    'RGW' = @{ Endpoint = $RgwEndpoint; Provider = 'Ceph' }
}
$sets = @(
    @{ Runs = 1000; Kind = 's3rver'; Server = 's3rver'; Label = '1,000 runs x 4 experiments'; Seconds = 1; Requests = 10 }
    @{ Runs = 10000; Kind = 's3rver'; Server = 's3rver'; Label = '10,000 runs x 4 experiments'; Seconds = 5; Requests = $null }
    @{ Runs = 1000; Kind = 'RGW'; Server = 'RGW'; Label = '1,000 runs x 4 experiments'; Seconds = 1; Requests = 10 }
    @{ Runs = 10000; Kind = 'RGW'; Server = 'RGW'; Label = '10,000 runs x 4 experiments'; Seconds = 5; Requests = $null }
    @{ Runs = 100000; Kind = 'local store'; Server = 'local'; Label = '100,000 runs x 4 experiments'; Seconds = 2; Requests = $null }
) | Where-Object { $_.Runs -in $Sizes -and $_.Server -in $Servers }
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
    # Catalogs.Open (0.5.0 on), StoreSettings.Open before; the writer is the catalog's part from 0.5.0 on.
    $opener = $core.GetType('GridArtifacts.Core.Catalogs'); if (-not $opener) { $opener = $core.GetType('GridArtifacts.Core.Stores.StoreSettings', $true) }
    $catalog = $opener::Open($Store)   # as the cmdlets open -Store
    $writer = if ($catalog.PSObject.Properties['Writer']) { $catalog.Writer } else { $catalog }
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
            $writer.WriteRunRecordAsync($record, $none)
        }
        [Threading.Tasks.Task]::WaitAll([Threading.Tasks.Task[]] @($tasks))
        foreach ($e in 0..($Experiments - 1)) {
            $tasks = foreach ($i in 0..($names.Count - 1)) {
                $created = $first.AddHours($start + $i)
                $record = @{ Run = $names[$i]; Experiment = "exp$e"; Status = 'Succeeded'; ExitCode = 0; Created = $created
                    Started = $created.AddMinutes(1); Finished = $created.AddMinutes(5); Heartbeat = $created.AddMinutes(5) } -as $experimentType
                $record.Parameters['lr'] = "0.$e"
                $writer.WriteExperimentRecordAsync($record, $none)
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

# Removes every key of the store with its own listing and DeleteObjects (1,000 keys a request).
$removeScript = {
    param([string] $ModulePath, [string] $Store)
    $ErrorActionPreference = 'Stop'
    Import-Module $ModulePath
    $null = Get-GridStore
    $core = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'GridArtifacts.Core' } | Select-Object -First 1
    $opener = $core.GetType('GridArtifacts.Core.Catalogs'); if (-not $opener) { $opener = $core.GetType('GridArtifacts.Core.Stores.StoreSettings', $true) }
    $objects = $opener::Open($Store).Store
    $none = [Threading.CancellationToken]::None
    $keys = [Collections.Generic.List[string]]::new()
    $listing = $objects.ListAsync('', $true, $none).GetAsyncEnumerator($none)
    while ($listing.MoveNextAsync().AsTask().GetAwaiter().GetResult()) { $keys.Add($listing.Current.Key) }
    $null = $objects.DeleteManyAsync($keys, $none).GetAwaiter().GetResult()
    "REMOVED $($keys.Count)"
}

foreach ($name in 'seed', 'list', 'page', 'remove') { Set-Content (Join-Path $work "$name.ps1") (Get-Variable "${name}Script" -ValueOnly).ToString() }

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

# ---- the counting proxies in front of the S3 servers ------------------------------------------------

function Start-CountProxy([string] $Target) {
    $psi = [Diagnostics.ProcessStartInfo]::new('node')
    foreach ($a in @((Join-Path $PSScriptRoot 'count-proxy.mjs'), '--target', $Target)) { $psi.ArgumentList.Add($a) }
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    $process = [Diagnostics.Process]::Start($psi)
    $line = $process.StandardOutput.ReadLineAsync()
    if (-not $line.Wait(15000) -or -not $line.Result) { $process.Kill(); throw "count-proxy did not start: $($process.StandardError.ReadToEnd())" }
    $ports = $line.Result | ConvertFrom-Json
    [pscustomobject]@{ Process = $process; Endpoint = "http://127.0.0.1:$($ports.port)"; Control = "http://127.0.0.1:$($ports.control)" }
}

function Measure-Once {
    <# One fresh process after a `sync`: a script above (the in-process time of its call) or rclone lsf -R (the whole process), with the requests it made through the proxy. #>
    param([string] $Name, $Build, $Store, [int] $Expected, $Proxy)
    sync
    if ($Proxy) { $null = Invoke-RestMethod -Method Post "$($Proxy.Control)/__reset" }
    if ($Name -eq 'rclone') {
        $sw = [Diagnostics.Stopwatch]::StartNew()
        $listing = Invoke-Peer 'rclone' @('lsf', '-R', $Store.Rclone) $Store.Peer.Env
        $seconds = $sw.Elapsed.TotalSeconds
        # lsf lists the folders too (name/): the keys are the other lines.
        $count = @($listing -split "`n" | Where-Object { $_ -and -not $_.EndsWith('/') }).Count
    }
    else {
        $line = @(Invoke-Fresh $Name @{ ModulePath = $Build.Path; Store = $Store.Timed; Expected = $Expected; Experiments = $experiments }) -match '^RESULT ' | Select-Object -Last 1
        if (-not $line) { throw "The fresh session ($Name.ps1) printed no result." }
        $seconds, $count = ($line -split ' ')[1, 2]
    }
    $requests = if ($Proxy) { [int](Invoke-RestMethod "$($Proxy.Control)/__count").count } else { $null }
    [pscustomobject]@{ Seconds = [double]$seconds; Count = [int]$count; Requests = $requests }
}

function Get-Summary($results) {
    <# The median and sorted times of a figure's rounds, and the requests of each (the first, and their range). #>
    $sorted = @($results.Seconds | Sort-Object)
    $median = if ($sorted.Count % 2) { $sorted[[int][math]::Floor($sorted.Count / 2)] } else { ($sorted[$sorted.Count / 2 - 1] + $sorted[$sorted.Count / 2]) / 2 }
    $counts = @($results.Requests | Where-Object { $null -ne $_ })
    [pscustomobject]@{ Median = $median; Times = $sorted; Requests = $counts | Select-Object -First 1; RequestRange = ($counts | Measure-Object -Minimum -Maximum); Count = $results[0].Count }
}

function Format-Requests($m) {
    if ($null -eq $m -or $null -eq $m.Requests) { return '–' }
    $text = '{0:N0}' -f $m.Requests
    if ($m.RequestRange.Minimum -ne $m.RequestRange.Maximum) { $text += ' ({0:N0}–{1:N0})' -f $m.RequestRange.Minimum, $m.RequestRange.Maximum }
    $text
}

function Get-RgwVersion {
    <# radosgw's version on this machine (tests/s3/Start-Rgw.sh runs this one), e.g. "Ceph 16.2.15". #>
    $text = if (Get-Command radosgw -ErrorAction Ignore) { radosgw --version 2>$null | Select-Object -First 1 }
    if ("$text" -match 'ceph version (\S+)') { "Ceph $($Matches[1])" } else { 'Ceph, version unknown' }
}

function Get-BuildName([string] $Path) {
    <# The manifest's version and, when the build sits in a git work tree, its commit. #>
    $psd1 = if ($Path -like '*.psd1') { $Path } else { Join-Path $Path 'GridArtifacts.psd1' }
    $version = (Import-PowerShellDataFile $psd1).ModuleVersion
    $commit = git -C (Split-Path $psd1) rev-parse --short HEAD 2>$null
    if ($LASTEXITCODE -eq 0 -and $commit) { "$version ($commit)" } else { $version }
}

# ---- seed, then time -------------------------------------------------------------------------------

$proxies = @{}
$seeded = [Collections.Generic.List[object]]::new()   # RGW stores, removed at the end
$madeBucket = $false
try {
    foreach ($server in @($sets.Server | Where-Object { $s3.ContainsKey($_) } | Select-Object -Unique)) {
        $proxies[$server] = Start-CountProxy $s3[$server].Endpoint
    }
    if ($proxies.ContainsKey('RGW')) {
        # A fresh RGW has no bucket: make it (and remove it at the end).
        $aws = (Get-PeerSetup $RgwEndpoint)
        try { $null = Invoke-Peer $aws.Aws @('--endpoint-url', $RgwEndpoint, 's3api', 'head-bucket', '--bucket', $Bucket) $aws.Env }
        catch { $null = Invoke-Peer $aws.Aws @('--endpoint-url', $RgwEndpoint, 's3', 'mb', "s3://$Bucket") $aws.Env; $madeBucket = $true }
    }
    $stores = @{}
    $seeding = [ordered]@{}
    foreach ($build in $builds) {
        foreach ($set in $sets) {
            $id = "catalog-$($build.Label -replace '\W', '')-$($set.Runs)-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
            $store = if ($proxies.ContainsKey($set.Server)) {
                # Seeded straight to the server, timed through the proxy: the keys are the same either way.
                $proxy = $proxies[$set.Server]
                $direct = $s3[$set.Server].Endpoint
                [pscustomobject]@{
                    Direct = "s3://$Bucket/$($id)?endpoint=$([uri]::EscapeDataString($direct))"
                    Timed = "s3://$Bucket/$($id)?endpoint=$([uri]::EscapeDataString($proxy.Endpoint))"
                    Rclone = "bench:$Bucket/$id/runs/"
                    Peer = Get-PeerSetup $proxy.Endpoint -Remote 'bench' -Provider $s3[$set.Server].Provider
                    Server = $set.Server; Prefix = $id
                }
            }
            else { $folder = Join-Path $work $id; [pscustomobject]@{ Direct = $folder; Timed = $folder; Server = $set.Server } }
            Write-Host "Seeding $($set.Label), $($set.Kind), with the $($build.Label) build ($($build.Path))..."
            if ($set.Server -eq 'RGW') { $seeded.Add($store) }
            $sw = [Diagnostics.Stopwatch]::StartNew()
            Invoke-Fresh 'seed' @{ ModulePath = $build.Path; Store = $store.Direct; Count = $set.Runs; Experiments = $experiments } -Stream
            $seeding["$($set.Label), $($set.Kind), $($build.Label) build"] = $sw.Elapsed.TotalSeconds
            Write-Host ('  {0}, {1}, {2} build: {3:0} s' -f $set.Label, $set.Kind, $build.Label, $sw.Elapsed.TotalSeconds)
            $stores["$($build.Label)/$($set.Kind)/$($set.Runs)"] = $store
        }
    }

    $whats = @(
        @{ Script = 'list'; Label = 'Get-GridRun, first call of a fresh session' }
        @{ Script = 'page'; Label = 'artifacts page: runs list, first load' }
        @{ Script = 'rclone'; Label = 'rclone lsf -R (defaults) of the same runs/ keys' }
    )
    $sections = [ordered]@{}
    foreach ($set in $sets) {
        # The rounds interleaved: each figure's first run, then each one's second, and so on.
        $results = @{}
        $proxy = $proxies[$set.Server]
        foreach ($round in 1..$Runs) {
            foreach ($what in $whats) {
                if ($what.Script -eq 'rclone' -and -not $proxy) { continue }
                foreach ($build in $builds) {
                    if ($what.Script -eq 'rclone' -and $build.Label -ne 'new') { continue }   # the peer lists the same kind of keys
                    $key = "$($what.Script)/$($build.Label)"
                    $r = Measure-Once $what.Script $build $stores["$($build.Label)/$($set.Kind)/$($set.Runs)"] $set.Runs $proxy
                    if (-not $results.ContainsKey($key)) { $results[$key] = [Collections.Generic.List[object]]::new() }
                    $results[$key].Add($r)
                    Write-Host ('    {0}, {1}, {2} [{3}] round {4}: {5:0.000} s, {6:N0} {7}{8}' -f $what.Label, $set.Kind, $set.Label, $build.Label, $round, $r.Seconds, $r.Count,
                        $(if ($what.Script -eq 'rclone') { 'keys' } else { 'runs' }), $(if ($proxy) { ', {0:N0} requests' -f $r.Requests } else { '' }))
                }
            }
        }
        $section = if ($set.Server -eq 'RGW') { 'RGW' } else { 'main' }
        if (-not $sections.Contains($section)) {
            $sections[$section] = [Collections.Generic.List[string]]::new()
            $sections[$section].Add('| what | store | size | median | runs (s) | requests (first call) | 0.1.0 median | 0.1.0 requests | target |')
            $sections[$section].Add('|---|---|---|---:|---|---:|---:|---:|---|')
        }
        foreach ($what in $whats) {
            if (-not $results.ContainsKey("$($what.Script)/new")) { continue }
            $ours = Get-Summary $results["$($what.Script)/new"]
            $old = if ($results.ContainsKey("$($what.Script)/0.1.0")) { Get-Summary $results["$($what.Script)/0.1.0"] }
            $times = ($ours.Times | ForEach-Object { '{0:0.00}' -f $_ }) -join ', '
            $row = if ($what.Script -eq 'rclone') {
                "| $($what.Label) ($('{0:N0}' -f $ours.Count) keys) | $($set.Kind) | $($set.Label) | $(Format-Seconds $ours.Median) | $times | $(Format-Requests $ours) | | | peer, same keys (whole process) |"
            }
            else {
                $target = "<= $($set.Seconds) s" + $(if ($set.Requests) { ", <= $($set.Requests) requests" })
                $met = $ours.Median -le $set.Seconds -and (-not $set.Requests -or $ours.Requests -le $set.Requests)
                "| $($what.Label) | $($set.Kind) | $($set.Label) | $(Format-Seconds $ours.Median) | $times | $(Format-Requests $ours) | $(if ($old) { Format-Seconds $old.Median } else { '–' }) | $(Format-Requests $old) | $target$(if ($met) { ': met' } else { ': missed' }) |"
            }
            $sections[$section].Add($row)
        }
    }

    $names = "median and requests: GridArtifacts $(Get-BuildName $builds[0].Path)" + $(if ($builds.Count -gt 1) { "; 0.1.0 columns: GridArtifacts $(Get-BuildName $builds[1].Path)" } else { '; no 0.1.0 build in this run' })
    $seedText = ($seeding.Keys | ForEach-Object { '{0}: {1:0} s' -f $_, $seeding[$_] }) -join '; '
    $how = "Measured $(Get-Date -Format 'yyyy-MM-dd'), medians of $Runs rounds, $names. Each figure is one call in a fresh pwsh (-NoProfile): the process imports the module and a Stopwatch times only the call, Get-GridRun -Store, or, after Start-GridArtifactServer -Store and the token-for-cookie request, the page's first GET of api/runs (what the browser waits for before it lists anything). Each call's count of runs (and of Succeeded runs with 4 experiments) is checked. rclone ($((rclone version | Select-Object -First 1) -replace '^rclone ', '')) is timed as a whole process, start-up included, listing the store's runs/ keys with its defaults (``lsf -R``, a remote from RCLONE_CONFIG_* variables, path-style). The rounds are interleaved (Get-GridRun, the page, rclone, then again), each after a ``sync``, all over one seed of each store. Requests are every HTTP request the process made to the server, counted by bench/count-proxy.mjs, a Node reverse proxy on loopback through which the S3 stores are addressed in every timed run (it adds its own hop to each request); the local store makes none. Each build seeded its own stores with its own code (the catalog's WriteRunRecordAsync and WriteExperimentRecordAsync, 64 at a time): $seedText."
    foreach ($section in $sections.Keys) {
        $title, $server = if ($section -eq 'RGW') { "Catalog at scale on Ceph's RADOS Gateway", "Ceph's RADOS Gateway ($(Get-RgwVersion); tests/s3/Start-Rgw.sh: one memstore OSD, beast frontend, on this machine). " } else { 'Catalog at scale', '' }
        $body = (@($sections[$section]) + @('', "$server$how")) -join "`n"
        if (-not $NoResults) { Write-ResultsSection -Path $ResultsPath -Title $title -Body $body }
        Write-Host "## $title`n$body"
    }
}
finally {
    foreach ($proxy in $proxies.Values) { if (-not $proxy.Process.HasExited) { $proxy.Process.Kill(); $proxy.Process.WaitForExit(5000) | Out-Null } }
    # The RGW stores go: its OSD keeps them in RAM. (DeleteObjects: `aws s3 rm --recursive` sends
    # one DELETE a key, 100,000 for the 10,000-run store.)
    foreach ($store in $seeded) {
        Write-Host "Removing s3://$Bucket/$($store.Prefix)/ from RGW..."
        try { Invoke-Fresh 'remove' @{ ModulePath = $builds[0].Path; Store = $store.Direct } -Stream }
        catch { Write-Warning "Could not remove s3://$Bucket/$($store.Prefix)/ from RGW: $_" }
    }
    if ($madeBucket) {
        try { $null = Invoke-Peer $aws.Aws @('--endpoint-url', $RgwEndpoint, 's3', 'rb', "s3://$Bucket") $aws.Env }
        catch { Write-Warning "Could not remove the bucket $Bucket from RGW: $_" }
    }
    # Directory.Delete, not Remove-Item: the 100,000-run stores are 500,000 files each.
    try { [IO.Directory]::Delete($work, $true) } catch { Write-Warning "Could not remove $($work): $_" }
}
