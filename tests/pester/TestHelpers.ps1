# Shared by the Pester files (dot-sourced in their BeforeAll).

# Runs a command in a fresh pwsh of this version, however this one was started (dotnet pwsh, or
# pwsh itself), with extra environment variables for that process only ($null removes one).
function Invoke-ChildPwsh([string] $Command, [hashtable] $Environment = @{}) {
    $exe = [Environment]::ProcessPath
    [string[]] $prefix = if ([IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') { Join-Path $PSHOME 'pwsh.dll' } else { @() }
    $saved = @{}
    foreach ($k in $Environment.Keys) { $saved[$k] = [Environment]::GetEnvironmentVariable($k); [Environment]::SetEnvironmentVariable($k, $Environment[$k]) }
    try { & $exe @prefix -NoProfile -NonInteractive -Command $Command 2>&1 | ForEach-Object { "$_" } }
    finally { foreach ($k in $saved.Keys) { [Environment]::SetEnvironmentVariable($k, $saved[$k]) } }
}

# The staged module under test (build.ps1 passes its path), imported fresh; returns its path.
function Import-GridTestModule {
    $path = if ($env:GRID_TEST_MODULE) { $env:GRID_TEST_MODULE } else { Join-Path $PSScriptRoot '../../out/GridArtifacts' }
    Import-Module $path -Force
    $path
}

# Files that talk to S3 need the s3rver that build.ps1 starts.
function Assert-S3Server {
    if (-not $env:GRID_TEST_S3_ENDPOINT) { throw 'GRID_TEST_S3_ENDPOINT is not set: run the tests with build.ps1 -Task Test, which starts s3rver.' }
}

# A fresh, empty store: a prefix of the test bucket on that s3rver.
function New-TestS3Store([string] $Name) {
    "s3://$($env:GRID_TEST_S3_BUCKET)/$Name-$([guid]::NewGuid().ToString('N'))?endpoint=$([uri]::EscapeDataString($env:GRID_TEST_S3_ENDPOINT))"
}

# The folder Start-GridRun made for a run under a working root (<run>.<random>), or nothing once it is removed.
function Get-RunFolder([string] $WorkingRoot, [string] $Run) {
    Get-ChildItem -LiteralPath $WorkingRoot -Directory -ErrorAction Ignore | Where-Object Name -Like "$Run.*" | ForEach-Object FullName
}
