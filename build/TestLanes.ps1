# The test run's lanes (build.ps1 -Task Test dot-sources this): xunit, the side lane (Slurm and the
# slowest Pester files), the RGW lane and the main Pester run, each a process of its own with its
# output in a log under out/TestResults, shown when it is read. Uses build.ps1's $root, $moduleOut,
# $testResults, $Configuration and Restore-TestPackages.

# A process of the test run started from $root, its output (both streams) to $Log.
function Start-Logged([string] $Log, [string[]] $Argv) {
    $psi = [System.Diagnostics.ProcessStartInfo]::new('bash')
    $psi.WorkingDirectory = $root
    foreach ($a in @('-c', 'exec "$@" > "$0" 2>&1', $Log) + $Argv) { $psi.ArgumentList.Add($a) }
    [System.Diagnostics.Process]::Start($psi)
}

# The RGW lane (tests/s3/Invoke-RgwLane.ps1: the S3 suites again, on RGW) in a pwsh of its own,
# on the test project Start-XunitTests built: started when the side lane or xunit has ended.
function Start-RgwLane([string] $Endpoint) {
    $packages = Restore-TestPackages
    $env:GRID_TEST_OLD_AWSSDK_CORE = $packages.OldAwsCore # S3Store.Tests.ps1's dependency isolation
    $result = Join-Path $testResults 'rgw-lane.json'
    $log = Join-Path $testResults 'rgw-lane.log'
    Remove-Item $result, $log -ErrorAction Ignore
    $process = Start-Logged $log @('dotnet', 'pwsh', '-NoProfile', '-NonInteractive', '-File', (Join-Path $root 'tests/s3/Invoke-RgwLane.ps1'),
        '-Endpoint', $Endpoint, '-ModulePath', $moduleOut, '-PesterPath', $packages.Pester, '-ResultFile', $result, '-Configuration', $Configuration)
    [pscustomobject]@{ Process = $process; Result = $result; Log = $log; Name = 'The RGW lane (the S3 suites on Ceph''s RADOS Gateway)' }
}

# Pester in a pwsh of its own (a loaded binary module cannot be unloaded: the staged module is
# tested in a child), its output to a log shown by Complete-Lane: -Path runs those files, else
# -ExcludePath leaves those out.
function Start-PesterLane([string] $Name, [string] $ResultName, [string[]] $Path, [string[]] $ExcludePath) {
    $packages = Restore-TestPackages
    $env:GRID_TEST_OLD_AWSSDK_CORE = $packages.OldAwsCore
    $result = Join-Path $testResults "$ResultName.json"
    $log = Join-Path $testResults "$ResultName.log"
    Remove-Item $result, $log -ErrorAction Ignore
    $files = if ($Path) { @('-Path', ($Path -join [IO.Path]::PathSeparator)) } else { @('-ExcludePath', ($ExcludePath -join [IO.Path]::PathSeparator)) }
    $process = Start-Logged $log (@('dotnet', 'pwsh', '-NoProfile', '-NonInteractive', '-File', (Join-Path $root 'tests/pester/Invoke-PesterTests.ps1'),
            '-PesterPath', $packages.Pester, '-ModulePath', $moduleOut, '-ResultFile', $result) + $files)
    [pscustomobject]@{ Process = $process; Result = $result; Log = $log; Name = $Name }
}

# The side lane (Get-SideLaneTests: the Slurm tests and a few slow Pester files), started before the
# other tests and read after them, so it runs beside xunit.
function Start-SideLaneTests {
    Start-PesterLane -ResultName 'side-lane' -Path (Get-SideLaneTests) `
        -Name "The side lane, run beside the others: $((Get-SideLaneTests | ForEach-Object { [IO.Path]::GetRelativePath($root, $_) }) -join ', ')"
}

function Complete-Lane($lane) {
    $lane.Process.WaitForExit()
    Write-Host "== $($lane.Name)"
    if (Test-Path $lane.Log) { Get-Content $lane.Log | Out-Host }
    if (-not (Test-Path $lane.Result)) {
        Write-Host "$($lane.Name): no results." -ForegroundColor Red
        return [pscustomobject]@{ Passed = 0; Failed = 1; Skipped = 0; Failures = @("$($lane.Name): no results (exit code $($lane.Process.ExitCode))") }
    }
    Get-Content -Raw $lane.Result | ConvertFrom-Json
}

# The xunit run in a process of its own (its output to a log, shown when it ends), on the test
# project built beforehand, so that the RGW lane can start while it runs (Wait-XunitTests).
function Start-XunitTests {
    $trx = Join-Path $testResults 'xunit.trx'
    $log = Join-Path $testResults 'xunit.log'
    Remove-Item $trx, $log -ErrorAction Ignore
    $project = Join-Path $root 'tests/GridArtifacts.Tests/GridArtifacts.Tests.csproj'
    Invoke-Native 'test build' { dotnet build $project -c $Configuration --nologo -v quiet }
    $process = Start-Logged $log @('dotnet', 'test', $project, '-c', $Configuration, '--no-build', '--nologo',
        '--logger', 'trx;LogFileName=xunit.trx', '--logger', 'console;verbosity=minimal', '--results-directory', $testResults)
    [pscustomobject]@{ Process = $process; Trx = $trx; Log = $log }
}

# Waits for the xunit run; meanwhile, once the side lane has ended, runs & $Meanwhile (once): the
# RGW lane then starts in the side lane's place rather than after xunit. Returns xunit's counts.
function Wait-XunitTests($xunit, $sideLane, [scriptblock] $Meanwhile) {
    $started = $false
    while (-not $xunit.Process.WaitForExit(500)) {
        if (-not $started -and $sideLane.Process.HasExited) { $started = $true; & $Meanwhile }
    }
    Write-Host '== xunit'
    if (Test-Path $xunit.Log) { Get-Content $xunit.Log | Out-Host }
    if (-not (Test-Path $xunit.Trx)) {
        Write-Host 'xunit produced no results (the test project did not run).' -ForegroundColor Red
        return [pscustomobject]@{ Passed = 0; Failed = 1; Skipped = 0; Failures = @("xunit: no results (exit code $($xunit.Process.ExitCode))") }
    }
    $run = ([xml](Get-Content -Raw $xunit.Trx)).TestRun
    $counters = $run.ResultSummary.Counters
    $failures = @($run.Results.UnitTestResult | Where-Object outcome -NE 'Passed' | Where-Object outcome -NE 'NotExecuted' |
            ForEach-Object { "$($_.testName): $($_.Output.ErrorInfo.Message)" })
    $failed = [int]$counters.failed + [int]$counters.error + [int]$counters.timeout + [int]$counters.aborted
    # A test host that crashed or a run that was aborted can leave results of the tests that ran only.
    if ($xunit.Process.ExitCode -ne 0 -and $failed -eq 0) { $failed = 1; $failures += "xunit: exit code $($xunit.Process.ExitCode) with no test failed (the run was cut short)" }
    [pscustomobject]@{ Passed = [int]$counters.passed; Failed = $failed; Skipped = [int]$counters.notExecuted; Failures = $failures }
}

# Pester files run beside the main Pester run, with the Slurm tests (tests/slurm), in a pwsh of their
# own: they mostly wait (for Slurm, for child processes), so both lanes end sooner than one would.
function Get-SideLaneTests {
    @('tests/slurm', 'tests/pester/Help.Tests.ps1', 'tests/pester/Capture.Tests.ps1', 'tests/pester/ClusterRecipes.Tests.ps1') | ForEach-Object { Join-Path $root $_ }
}

# The other Pester files (not the side lane's), beside the page's and browser tests.
function Start-MainPesterTests {
    Start-PesterLane -Name 'Pester' -ResultName 'pester' -ExcludePath (Get-SideLaneTests | Where-Object { $_ -like '*.ps1' })
}
