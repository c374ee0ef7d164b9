#Requires -Version 7.4
<#
.SYNOPSIS
    Builds, tests, demonstrates and benchmarks GridArtifacts.
.DESCRIPTION
    -Task Build  stages an importable module at out/GridArtifacts, with grid-agent (the capture agent
                 as one Native AOT executable) in agent/linux-x64 when built on linux-x64.
    -Task Test   builds, runs every xunit, Pester and browser test (Pester in a child pwsh against
                 out/; the artifacts page in Debian's Chromium, installed if missing; the Slurm
                 tests, on a one-node Slurm started here as root on Linux, and a few slow Pester
                 files in a second pwsh beside them),
                 prints one closing line "N passed, N failed, N skipped" and exits non-zero on any failure.
    -Task Demo   builds, then runs examples/demo.ps1 on the local folder store.
    -Task Bench  builds, starts s3rver, runs bench/*.Bench.ps1 against it and the local store beside
                 aws cli and rclone (installed from Debian if missing), and writes bench/results.md.
    -Task Package builds, then packs the staged module into out/packages/GridArtifacts.<version>.nupkg
                 (Compress-PSResource, offline; -Task Test packs too, to test the package),
                 and grid-agent alone into out/packages/grid-agent-<version>-linux-x64.tar.gz,
                 ready for a PSResourceGet repository:
                 Register-PSResourceRepository -Name local -Uri ./out/packages -Trusted
                 Install-PSResource GridArtifacts -Repository local
    -Task Clean  removes out/.
.EXAMPLE
    dotnet tool restore && dotnet pwsh ./build.ps1 -Task Test
.EXAMPLE
    dotnet pwsh ./build.ps1 -Task Package
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Demo', 'Bench', 'Package', 'Clean')]
    [string] $Task = 'Build',

    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release',

    # With -Task Bench: only benchmarks whose file name matches this wildcard.
    [string] $BenchFilter
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$root = $PSScriptRoot
$out = Join-Path $root 'out'
$moduleOut = Join-Path $out 'GridArtifacts'
$testResults = Join-Path $out 'TestResults'
$packages = Join-Path $out 'packages'
$env:DOTNET_CLI_TELEMETRY_OPTOUT = '1'
$env:DOTNET_NOLOGO = '1'
$script:SlurmStarted = $false

function Invoke-Native {
    param([string] $What, [scriptblock] $Command)
    & $Command | Out-Host
    if ($LASTEXITCODE -ne 0) { throw "$What failed (exit code $LASTEXITCODE)." }
}

function Get-ModuleVersion {
    $props = [xml](Get-Content -Raw (Join-Path $root 'Directory.Build.props'))
    $props.Project.PropertyGroup.Version | Where-Object { $_ } | Select-Object -First 1
}

function Invoke-Build {
    $publish = Join-Path $out 'publish'
    if (Test-Path $publish) { Remove-Item -Recurse -Force $publish }
    Invoke-Native 'dotnet publish' { dotnet publish (Join-Path $root 'src/GridArtifacts/GridArtifacts.csproj') -c $Configuration -o $publish --nologo -v quiet }

    if (Test-Path $moduleOut) { Remove-Item -Recurse -Force $moduleOut }
    $deps = Join-Path $moduleOut 'deps'
    New-Item -ItemType Directory -Force -Path $deps | Out-Null

    # The cmdlet assembly loads in PowerShell's default context; the engine and its dependencies
    # load from deps/ in the module's own context (src/GridArtifacts/ModuleInit.cs).
    foreach ($file in Get-ChildItem $publish -File) {
        if ($file.Name -like 'System.Management.Automation*') { throw "The build would ship $($file.Name); PowerShell references must be compile-time only." }
        if ($file.Extension -eq '.json') { continue }
        $target = if ($file.BaseName -in 'GridArtifacts', 'GridArtifacts.Model') { $moduleOut } else { $deps }
        Copy-Item $file.FullName $target
    }
    Copy-Item (Join-Path $root 'src/GridArtifacts/Module/*') $moduleOut
    $version = Get-ModuleVersion
    $manifest = Get-Content -Raw (Join-Path $root 'GridArtifacts.psd1')
    $manifest = $manifest -replace "ModuleVersion\s*=\s*'[^']*'", "ModuleVersion        = '$version'"
    Set-Content -Path (Join-Path $moduleOut 'GridArtifacts.psd1') -Value $manifest -NoNewline
    Test-ModuleManifest (Join-Path $moduleOut 'GridArtifacts.psd1') | Out-Null
    # grid-agent, compiled ahead of time, beside the help build (which only imports the module).
    $agent = Start-AgentBuild
    # Help from docs/help/*.md, checked against the compiled cmdlets (in a pwsh of its own: the
    # generator imports the module). Fails the build when a cmdlet is not fully documented.
    Invoke-Native 'help build' { dotnet pwsh -NoProfile -NonInteractive -File (Join-Path $root 'build/New-MamlHelp.ps1') -ModulePath $moduleOut -SourcePath (Join-Path $root 'docs/help') }
    Complete-AgentBuild $agent
    Write-Host "Built GridArtifacts $version at $moduleOut"
}

# grid-agent (src/GridArtifacts.Agent): the capture agent as one Native AOT executable, for this
# machine's platform where it is built here (linux-x64), shipped in the module as
# agent/<platform>/grid-agent. Elsewhere the module runs experiments under pwsh, as it says.
function Get-AgentPlatform {
    if (-not $IsLinux -or [Runtime.InteropServices.RuntimeInformation]::OSArchitecture -ne 'X64') { return $null }
    'linux-x64'
}

function Start-AgentBuild {
    $platform = Get-AgentPlatform
    if (-not $platform) { Write-Host "No grid-agent is built on this platform: experiments run under pwsh." -ForegroundColor Yellow; return $null }
    $publish = Join-Path $out "agent/$platform"
    if (Test-Path $publish) { Remove-Item -Recurse -Force $publish }
    $log = Join-Path $out "agent-$platform.log"
    # Every word passed as it is (a checkout path may hold spaces), the output into the log.
    $psi = [System.Diagnostics.ProcessStartInfo]::new('bash')
    foreach ($a in @('-c', 'exec "$@" > "$0" 2>&1', $log, 'dotnet', 'publish', (Join-Path $root 'src/GridArtifacts.Agent/GridArtifacts.Agent.csproj'),
            '-c', $Configuration, '-r', $platform, '-o', $publish, '--nologo', '-v', 'quiet')) { $psi.ArgumentList.Add($a) }
    [pscustomobject]@{ Process = [System.Diagnostics.Process]::Start($psi); Platform = $platform; Publish = $publish; Log = $log }
}

function Complete-AgentBuild($agent) {
    if (-not $agent) { return }
    $agent.Process.WaitForExit()
    if ($agent.Process.ExitCode -ne 0) {
        Get-Content $agent.Log -ErrorAction Ignore | Out-Host
        throw "The grid-agent build failed (exit code $($agent.Process.ExitCode)); its log is above."
    }
    $target = Join-Path $moduleOut "agent/$($agent.Platform)"
    New-Item -ItemType Directory -Force -Path $target | Out-Null
    Copy-Item (Join-Path $agent.Publish 'grid-agent') $target
    $size = (Get-Item (Join-Path $target 'grid-agent')).Length
    Write-Host ("Built grid-agent for {0} ({1:N1} MB, Native AOT)" -f $agent.Platform, ($size / 1MB))
}

# The staged module as a .nupkg for PSResourceGet (and PowerShellGet) repositories.
function Invoke-Package {
    if (Test-Path $packages) { Remove-Item -Recurse -Force $packages }
    New-Item -ItemType Directory -Path $packages | Out-Null
    Compress-PSResource -Path $moduleOut -DestinationPath $packages
    $nupkg = Join-Path $packages "GridArtifacts.$(Get-ModuleVersion).nupkg"
    if (-not (Test-Path $nupkg)) { throw "Packing made no $nupkg." }
    Write-Host "Packed $nupkg"
    # grid-agent alone, for a training image or a cluster's nodes: one file, no PowerShell, no .NET.
    foreach ($dir in Get-ChildItem (Join-Path $moduleOut 'agent') -Directory -ErrorAction Ignore) {
        $tarball = Join-Path $packages "grid-agent-$(Get-ModuleVersion)-$($dir.Name).tar.gz"
        Invoke-Native 'tar' { tar -czf $tarball -C $dir.FullName --owner=0 --group=0 --mode='u=rwx,go=rx' grid-agent }
        Write-Host "Packed $tarball"
    }
}

function Get-NuGetCache {
    if ($env:NUGET_PACKAGES) { $env:NUGET_PACKAGES } else { Join-Path ([Environment]::GetFolderPath('UserProfile')) '.nuget/packages' }
}

function Restore-TestPackages {
    Invoke-Native 'test package restore' { dotnet restore (Join-Path $root 'tests/pester/PesterRestore.csproj') --nologo -v quiet }
    $cache = Get-NuGetCache
    $paths = [pscustomobject]@{
        Pester     = Join-Path $cache 'pester/5.7.1/tools/Pester.psd1'
        OldAwsCore = Join-Path $cache 'awssdk.core/3.7.402/lib/netstandard2.0/AWSSDK.Core.dll'
    }
    foreach ($p in $paths.PSObject.Properties.Value) { if (-not (Test-Path $p)) { throw "Restored, but '$p' is missing." } }
    $paths
}

# A real S3-compatible server (s3rver, pinned in tests/s3/package-lock.json) on a free loopback port,
# for the S3 store's tests. Stopped by Stop-S3Server whatever happens.
function Start-S3Server {
    param([string] $Bucket)
    Invoke-Native 'npm ci' { npm ci --prefix (Join-Path $root 'tests/s3') --no-audit --no-fund --loglevel=error }
    $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
    $listener.Start(); $port = $listener.LocalEndpoint.Port; $listener.Stop()
    $data = Join-Path ([IO.Path]::GetTempPath()) "grid-s3rver-$([guid]::NewGuid().ToString('N'))"
    New-Item -ItemType Directory -Path $data | Out-Null
    $psi = [System.Diagnostics.ProcessStartInfo]::new('node')
    foreach ($a in @((Join-Path $root 'tests/s3/node_modules/s3rver/bin/s3rver.js'), '-d', $data, '-a', '127.0.0.1', '-p', $port, '--silent', '--configure-bucket', $Bucket)) { $psi.ArgumentList.Add([string]$a) }
    # Node 20 needs the legacy provider for listings that use continuation tokens (over 1,000 keys).
    $psi.Environment['NODE_OPTIONS'] = '--openssl-legacy-provider'
    # Redirected so the server holds no handle on this script's output; --silent keeps them empty.
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    $process = [System.Diagnostics.Process]::Start($psi)
    $deadline = [DateTime]::UtcNow.AddSeconds(30)
    while ([DateTime]::UtcNow -lt $deadline) {
        if ($process.HasExited) { throw "s3rver exited: $($process.StandardError.ReadToEnd())" }
        try { [System.Net.Sockets.TcpClient]::new('127.0.0.1', $port).Dispose(); break } catch { Start-Sleep -Milliseconds 100 }
    }
    [pscustomobject]@{ Process = $process; Endpoint = "http://127.0.0.1:$port"; Data = $data }
}

function Stop-S3Server($server) {
    if (-not $server -or -not $server.PSObject.Properties['Process']) { return }
    if (-not $server.Process.HasExited) { $server.Process.Kill($true); $server.Process.WaitForExit(5000) | Out-Null }
    Remove-Item -Recurse -Force $server.Data -ErrorAction Ignore
}

# A one-node Slurm for tests/slurm (tests/slurm/Start-Slurm.sh: Debian's slurm-wlm and munge,
# installed if missing), on Linux as root unless GRID_TEST_SLURM is 0. Returns why it does not run
# (its tests are then skipped, saying so), or $null; a start that fails is an error.
function Start-TestSlurm {
    if (-not $IsLinux) { return 'they need Linux' }
    if ((id -u) -ne '0') { return 'they need root (slurmd runs the jobs; munged starts as its user)' }
    if ($env:GRID_TEST_SLURM -eq '0') { return 'GRID_TEST_SLURM is 0' }
    $exports = bash (Join-Path $root 'tests/slurm/Start-Slurm.sh')
    if ($LASTEXITCODE -ne 0) { throw "tests/slurm/Start-Slurm.sh failed (exit code $LASTEXITCODE)." }
    foreach ($line in $exports) {
        if ($line -match "^export (\w+)='?(.*?)'?$") { [Environment]::SetEnvironmentVariable($Matches[1], $Matches[2]) }
    }
    $script:SlurmStarted = $true
    $null
}

# Stops the Slurm that Start-TestSlurm started (and nothing else).
function Stop-TestSlurm {
    if ($script:SlurmStarted) { bash (Join-Path $root 'tests/slurm/Stop-Slurm.sh') | Out-Host; $script:SlurmStarted = $false }
}

# Ceph's RADOS Gateway for the RGW lane (tests/s3/Start-Rgw.sh: Debian's ceph-mon, ceph-osd, radosgw
# and ceph-common, installed if missing), on Linux as root unless GRID_TEST_RGW is 0, in a state folder
# of this run's own. Started in the background while the module builds; Complete-TestRgw waits for it.
function Start-TestRgw {
    $why = if (-not $IsLinux) { 'it needs Linux' } elseif ((id -u) -ne '0') { 'it needs root (the daemons and their state folder)' } elseif ($env:GRID_TEST_RGW -eq '0') { 'GRID_TEST_RGW is 0' }
    if ($why) { return [pscustomobject]@{ Skip = $why; Process = $null } }
    $dir = Join-Path ([IO.Path]::GetTempPath()) "grid-rgw-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
    $exports = Join-Path $testResults 'rgw.env'
    $log = Join-Path $testResults 'rgw-start.log'
    $psi = [System.Diagnostics.ProcessStartInfo]::new('bash')
    foreach ($a in @('-c', 'exec bash "$0" > "$1" 2> "$2"', (Join-Path $root 'tests/s3/Start-Rgw.sh'), $exports, $log)) { $psi.ArgumentList.Add($a) }
    $psi.Environment['GRID_RGW_DIR'] = $dir
    $script:RgwDir = $dir
    [pscustomobject]@{ Skip = $null; Process = [System.Diagnostics.Process]::Start($psi); Exports = $exports; Log = $log }
}

# The RGW endpoint once tests/s3/Start-Rgw.sh has ended; a start that fails is an error.
function Complete-TestRgw($rgw) {
    $rgw.Process.WaitForExit()
    if ($rgw.Process.ExitCode -ne 0) {
        if (Test-Path $rgw.Log) { Get-Content $rgw.Log | Out-Host }
        throw "tests/s3/Start-Rgw.sh failed (exit code $($rgw.Process.ExitCode))."
    }
    $line = Get-Content $rgw.Exports | Where-Object { $_ -match "^export GRID_TEST_RGW_ENDPOINT='?(.*?)'?$" } | Select-Object -First 1
    if (-not $line) { throw 'tests/s3/Start-Rgw.sh gave no endpoint.' }
    $Matches[1]
}

# Stops the RGW that Start-TestRgw started (and nothing else).
function Stop-TestRgw {
    # Set only by a start that ran (a skipped one set nothing: StrictMode would refuse the unset variable).
    if (Get-Variable -Name RgwDir -Scope Script -ValueOnly -ErrorAction Ignore) { $env:GRID_RGW_DIR = $script:RgwDir; bash (Join-Path $root 'tests/s3/Stop-Rgw.sh') | Out-Host; Remove-Item Env:GRID_RGW_DIR; $script:RgwDir = $null }
}

# The test run's lanes: processes of their own, read when they end (build/TestLanes.ps1).
. (Join-Path $PSScriptRoot 'build/TestLanes.ps1')

function Invoke-BrowserTests {
    # The artifacts page in Debian's Chromium, driven by playwright-core (tests/browser).
    if (-not (Test-Path /usr/bin/chromium)) {
        apt-get install -y --no-install-recommends chromium | Out-Host
        if ($LASTEXITCODE -ne 0) { Invoke-Native 'apt-get install chromium' { apt-get update; apt-get install -y --no-install-recommends chromium } }
    }
    $browser = Join-Path $root 'tests/browser'
    Invoke-Native 'npm ci' { npm ci --prefix $browser --no-audit --no-fund --loglevel=error }
    $env:GRID_TEST_MODULE_PATH = $moduleOut
    $env:GRID_TEST_SCREENSHOTS = $testResults
    Push-Location $browser
    try { Invoke-NodeTests 'The browser tests' }
    finally { Pop-Location }
}

function Invoke-PageTests {
    # The page's pure modules (parsing, scales, state) under node --test: no browser, no packages.
    Push-Location (Join-Path $root 'tests/page')
    try { Invoke-NodeTests "The page's module tests" }
    finally { Pop-Location }
}

function Invoke-NodeTests([string] $Lane) {
    # node --test in the current folder, its TAP summary read into the closing line's counts.
    node --test --test-reporter=tap 2>&1 | ForEach-Object { "$_" } | Tee-Object -Variable tap | Out-Host
    $count = { param($name) $m = $tap | Select-String "^# $name (\d+)$" | Select-Object -Last 1; if ($m) { [int]$m.Matches[0].Groups[1].Value } else { 0 } }
    $passed = & $count 'pass'
    $failed = (& $count 'fail') + (& $count 'cancelled')
    if ($passed + $failed -eq 0 -or ($LASTEXITCODE -ne 0 -and $failed -eq 0)) {
        Write-Host "$Lane did not run to the end." -ForegroundColor Red
        $failed++
    }
    $failures = @($tap | Where-Object { $_ -match '^\s*not ok \d+ - ' } | ForEach-Object { $_.Trim() })
    [pscustomobject]@{ Passed = $passed; Failed = $failed; Skipped = (& $count 'skipped'); Failures = $failures }
}

switch ($Task) {
    'Clean' { if (Test-Path $out) { Remove-Item -Recurse -Force $out } }
    'Build' { Invoke-Build }
    'Package' { Invoke-Build; Invoke-Package }
    'Demo' {
        Invoke-Build
        Push-Location $root
        try {
            Invoke-Native 'demo' { dotnet pwsh -NoProfile -NonInteractive -File (Join-Path $root 'examples/demo.ps1') -ModulePath $moduleOut }
        }
        finally { Pop-Location }
    }
    'Bench' {
        Invoke-Build
        $missing = @('rclone', 'hyperfine', 'wrk') | Where-Object { -not (Get-Command $_ -ErrorAction Ignore) }
        if (-not (Test-Path /usr/bin/aws)) { $missing += 'awscli' }
        if ($missing) { Invoke-Native 'apt-get install' { apt-get install -y @missing } }
        $server = $null
        $rgw = $null
        try {
            $benches = @(Get-ChildItem (Join-Path $root 'bench') -Filter '*.Bench.ps1' | Sort-Object Name | Where-Object { -not $BenchFilter -or $_.Name -like $BenchFilter })
            # Benchmarks that declare -RgwEndpoint also measure on Ceph's RADOS Gateway: one is started
            # for them (tests/s3/Start-Rgw.sh, in the background) and stopped at the end.
            $rgwEndpoint = $null
            if (@($benches | Where-Object { (Get-Command $_.FullName).Parameters.ContainsKey('RgwEndpoint') })) {
                New-Item -ItemType Directory -Force -Path $testResults | Out-Null
                # Room for Transfer.Bench.ps1's largest set twice over (2 x 1 GiB, stored and uploaded);
                # it has removed uploads collected at once (radosgw-admin gc process, GRID_BENCH_RGW_CONF).
                if (-not $env:GRID_RGW_MEMORY) { $env:GRID_RGW_MEMORY = [string](8GB) }
                $rgw = Start-TestRgw
                if ($rgw.Skip) { Write-Host "No RGW for the benchmarks: $($rgw.Skip); they measure without it." -ForegroundColor Yellow }
            }
            # Cluster.Bench.ps1 measures on a one-node Slurm (as root on Linux; it says so when there is none).
            if (-not $BenchFilter -or 'Cluster.Bench.ps1' -like $BenchFilter) {
                $noSlurm = Start-TestSlurm
                if ($noSlurm) { Write-Host "No Slurm for Cluster.Bench.ps1: $noSlurm." -ForegroundColor Yellow }
            }
            $server = Start-S3Server -Bucket 'grid-bench'
            $env:GRID_BENCH_S3_DATA = $server.Data # Transfer.Bench.ps1 removes its uploads from it between runs
            foreach ($bench in $benches) {
                Write-Host "== $($bench.Name)"
                $benchArgs = @('-ModulePath', $moduleOut, '-Endpoint', $server.Endpoint, '-Bucket', 'grid-bench')
                if ($rgw -and -not $rgw.Skip -and (Get-Command $bench.FullName).Parameters.ContainsKey('RgwEndpoint')) {
                    if (-not $rgwEndpoint) { $rgwEndpoint = Complete-TestRgw $rgw; $env:GRID_BENCH_RGW_CONF = Join-Path $script:RgwDir 'ceph.conf' }
                    $benchArgs += '-RgwEndpoint', $rgwEndpoint
                }
                Invoke-Native $bench.Name { dotnet pwsh -NoProfile -NonInteractive -File $bench.FullName @benchArgs }
            }
        }
        finally {
            if ($rgw -and $rgw.Process -and -not $rgw.Process.HasExited) { $rgw.Process.WaitForExit() }
            if ($rgw -and -not $rgw.Skip) { Stop-TestRgw }   # a skipped start set no state folder
            Stop-TestSlurm
            Stop-S3Server $server
        }
    }
    'Test' {
        New-Item -ItemType Directory -Force -Path $testResults | Out-Null
        $results = @()
        $server = $null
        $sideLane = $null
        $xunit = $null
        $mainPester = $null
        $script:rgwLane = $null
        $script:rgwLaneStarted = $false
        $script:rgwLaneFailed = $null
        $saved = @{}
        try {
            $rgw = Start-TestRgw
            Invoke-Build
            Invoke-Package
            $server = Start-S3Server -Bucket 'grid-pester'
            # s3rver's fixed test identity, through the SDK's standard credential chain.
            $testEnv = @{
                GRID_TEST_S3_ENDPOINT = $server.Endpoint
                GRID_TEST_S3_BUCKET   = 'grid-pester'
                AWS_ACCESS_KEY_ID     = 'S3RVER'
                AWS_SECRET_ACCESS_KEY = 'S3RVER'
                AWS_REGION            = 'us-east-1'
            }
            foreach ($k in $testEnv.Keys) { $saved[$k] = [Environment]::GetEnvironmentVariable($k); [Environment]::SetEnvironmentVariable($k, $testEnv[$k]) }
            foreach ($k in 'SLURM_CONF', 'GRID_SLURM_DIR') { $saved[$k] = [Environment]::GetEnvironmentVariable($k) }
            $noSlurm = Start-TestSlurm
            if ($noSlurm) { Write-Host "The Slurm tests are skipped: $noSlurm." -ForegroundColor Yellow }
            $sideLane = Start-SideLaneTests
            $xunit = Start-XunitTests
            $startRgwLane = {
                if ($script:rgwLaneStarted) { return }
                $script:rgwLaneStarted = $true
                if ($rgw.Skip) { Write-Host "The RGW lane is skipped: $($rgw.Skip)." -ForegroundColor Yellow; return }
                # A gateway that did not start fails the RGW lane, not the lanes running meanwhile.
                try { $script:rgwLane = Start-RgwLane (Complete-TestRgw $rgw) }
                catch {
                    Write-Host "The RGW lane did not start: $_" -ForegroundColor Red
                    $script:rgwLaneFailed = [pscustomobject]@{ Passed = 0; Failed = 1; Skipped = 0; Failures = @("the RGW lane did not start: $_") }
                }
            }
            $results += Wait-XunitTests $xunit $sideLane $startRgwLane
            & $startRgwLane
            $mainPester = Start-MainPesterTests
            # The page's and browser tests set up what they need; a setup that fails is their failure alone.
            foreach ($lane in @{ Name = "the page's module tests"; Run = { Invoke-PageTests } }, @{ Name = 'the browser tests'; Run = { Invoke-BrowserTests } }) {
                try { $results += & $lane.Run }
                catch {
                    Write-Host "$($lane.Name) failed: $_" -ForegroundColor Red
                    $results += [pscustomobject]@{ Passed = 0; Failed = 1; Skipped = 0; Failures = @("$($lane.Name): $_") }
                }
            }
            $results += Complete-Lane $mainPester
            $results += Complete-Lane $sideLane
            $sideLane = $null
            if ($script:rgwLane) { $results += Complete-Lane $script:rgwLane }
            if ($script:rgwLaneFailed) { $results += $script:rgwLaneFailed }
        }
        catch {
            Write-Host "Test run failed: $_" -ForegroundColor Red
            $results += [pscustomobject]@{ Passed = 0; Failed = 1; Skipped = 0; Failures = @("the test run: $_") }
        }
        finally {
            foreach ($lane in $sideLane, $script:rgwLane, $xunit, $mainPester) { if ($lane -and -not $lane.Process.HasExited) { $lane.Process.Kill($true) } }
            if ($rgw -and $rgw.Process -and -not $rgw.Process.HasExited) { $rgw.Process.WaitForExit() }
            Stop-TestRgw
            Stop-TestSlurm
            Stop-S3Server $server
            foreach ($k in $saved.Keys) { [Environment]::SetEnvironmentVariable($k, $saved[$k]) }
        }
        $passed = ($results | Measure-Object Passed -Sum).Sum
        $failed = ($results | Measure-Object Failed -Sum).Sum
        $skipped = ($results | Measure-Object Skipped -Sum).Sum
        # What failed, named once more here: the log above may be too long to read whole.
        $failures = @($results | ForEach-Object { $_.Failures } | Where-Object { $_ })
        if ($failures) {
            Write-Host "Failed:" -ForegroundColor Red
            foreach ($f in $failures) { $line = $f -replace '\s+', ' '; Write-Host "  $($line.Substring(0, [Math]::Min(600, $line.Length)))" -ForegroundColor Red }
        }
        Write-Host "$passed passed, $failed failed, $skipped skipped"
        if ($failed -gt 0) { exit 1 }
    }
}
