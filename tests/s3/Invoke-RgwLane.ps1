# The S3 suites again, on Ceph's RADOS Gateway (tests/s3/Start-Rgw.sh), as build.ps1 -Task Test
# runs them beside the others: the xunit store contract, one-writer, fault, reliability, Unicode-name
# and S3 store tests, then the Pester S3 store and one-writer files and the Slurm sweep. Writes one
# JSON result (Passed, Failed, Skipped, Failures) for both, as tests/pester/Invoke-PesterTests.ps1 does.
param(
    [Parameter(Mandatory)] [string] $Endpoint,
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $PesterPath,
    [Parameter(Mandatory)] [string] $ResultFile,
    [string] $Configuration = 'Release'
)
$ErrorActionPreference = 'Stop'
$root = Resolve-Path (Join-Path $PSScriptRoot '../..')
$results = Split-Path -Parent $ResultFile
$bucket = 'grid-pester'

# The S3 tests' identity and server, for this process and its children only. The machine's CA
# bundle is for https endpoints; this one is plain http on loopback.
$env:GRID_TEST_S3_ENDPOINT = $Endpoint
$env:GRID_TEST_S3_BUCKET = $bucket
$env:AWS_ACCESS_KEY_ID = 'S3RVER'
$env:AWS_SECRET_ACCESS_KEY = 'S3RVER'
$env:AWS_REGION = 'us-east-1'
Remove-Item Env:AWS_CA_BUNDLE -ErrorAction Ignore

# The Pester files' bucket (s3rver makes its own with --configure-bucket), through the module's own SDK.
$deps = Join-Path $ModulePath 'deps'
Add-Type -Path (Join-Path $deps 'AWSSDK.Core.dll'), (Join-Path $deps 'AWSSDK.S3.dll')
$config = [Amazon.S3.AmazonS3Config]@{ ServiceURL = $Endpoint; ForcePathStyle = $true; AuthenticationRegion = 'us-east-1' }
$client = [Amazon.S3.AmazonS3Client]::new('S3RVER', 'S3RVER', $config)
try { $null = $client.PutBucketAsync($bucket).GetAwaiter().GetResult() }
catch [Amazon.S3.AmazonS3Exception] { if ($_.Exception.ErrorCode -notin 'BucketAlreadyOwnedByYou', 'BucketAlreadyExists') { throw } }
finally { $client.Dispose() }

$summary = [pscustomobject]@{ Passed = 0; Failed = 0; Skipped = 0; Failures = @() }
function Add-Result($r, [string] $Lane) {
    $summary.Passed += [int]$r.Passed; $summary.Failed += [int]$r.Failed; $summary.Skipped += [int]$r.Skipped
    $summary.Failures += @($r.Failures | Where-Object { $_ } | ForEach-Object { "$Lane $_" })
}

# xunit, on the build the main lane made.
$classes = 'S3StoreContractTests', 'S3StoreErrorTests', 'S3OneWriterTests', 'FaultTests', 'ReliabilityTests', 'S3UnicodeNameTests', 'S3DirectTests', 'AgentExecutableTests'
$trx = Join-Path $results 'xunit-rgw.trx'
Remove-Item $trx -ErrorAction Ignore
& dotnet test (Join-Path $root 'tests/GridArtifacts.Tests/GridArtifacts.Tests.csproj') -c $Configuration --no-build --nologo `
    --filter (($classes | ForEach-Object { "FullyQualifiedName~GridArtifacts.Tests.$_." }) -join '|') `
    --logger 'trx;LogFileName=xunit-rgw.trx' --logger 'console;verbosity=minimal' --results-directory $results | Out-Host
$xunitExit = $LASTEXITCODE
if (Test-Path $trx) {
    $run = ([xml](Get-Content -Raw $trx)).TestRun
    $c = $run.ResultSummary.Counters
    Add-Result ([pscustomobject]@{
            Passed = $c.passed; Failed = [int]$c.failed + [int]$c.error + [int]$c.timeout + [int]$c.aborted; Skipped = $c.notExecuted
            Failures = @($run.Results.UnitTestResult | Where-Object outcome -NotIn 'Passed', 'NotExecuted' | ForEach-Object { "$($_.testName): $($_.Output.ErrorInfo.Message)" })
        }) 'RGW xunit:'
    # A test host that crashed or a run that was aborted can leave results of the tests that ran only.
    if ($xunitExit -ne 0 -and [int]$c.failed + [int]$c.error + [int]$c.timeout + [int]$c.aborted -eq 0) {
        Add-Result ([pscustomobject]@{ Passed = 0; Failed = 1; Skipped = 0; Failures = @("exit code $xunitExit with no test failed (the run was cut short)") }) 'RGW xunit:'
    }
}
else { Add-Result ([pscustomobject]@{ Passed = 0; Failed = 1; Skipped = 0; Failures = @('produced no results') }) 'RGW xunit:' }

# Pester: the S3 store and one-writer files, and the Slurm sweep (when the side lane's Slurm runs).
function Invoke-Pester([string] $Name, [string[]] $Paths, [string] $Filter) {
    $file = Join-Path $results "pester-rgw-$Name.json"
    Remove-Item $file -ErrorAction Ignore
    $more = if ($Filter) { @('-FullNameFilter', $Filter) } else { @() }
    & dotnet pwsh -NoProfile -NonInteractive -File (Join-Path $root 'tests/pester/Invoke-PesterTests.ps1') -PesterPath $PesterPath -ModulePath $ModulePath `
        -ResultFile $file -Path (($Paths | ForEach-Object { Join-Path $root $_ }) -join [IO.Path]::PathSeparator) @more | Out-Host
    if (Test-Path $file) { Add-Result (Get-Content -Raw $file | ConvertFrom-Json) 'RGW Pester:' }
    else { Add-Result ([pscustomobject]@{ Passed = 0; Failed = 1; Skipped = 0; Failures = @("$Name produced no results") }) 'RGW Pester:' }
}
Invoke-Pester 's3' @('tests/pester/S3Store.Tests.ps1', 'tests/pester/OneWriter.Tests.ps1')
if ($env:SLURM_CONF) { Invoke-Pester 'slurm' @('tests/slurm/Slurm.Tests.ps1') '*runs a 3-experiment sweep as one array job*' }

$summary | ConvertTo-Json -Depth 3 | Set-Content -Path $ResultFile
