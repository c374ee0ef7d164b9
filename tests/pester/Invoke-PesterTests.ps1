# Runs the Pester suite against the staged module; called by build.ps1 in a child pwsh.
param(
    [Parameter(Mandatory)] [string] $PesterPath,
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $ResultFile,
    # Test files or folders (tests/pester by default), and those of them to leave out, each a list
    # joined by the path separator (':' here, as in PATH): build.ps1 runs the Slurm tests and a few
    # slow files in a second pwsh beside this one.
    [string] $Path = $PSScriptRoot,
    [string] $ExcludePath = '',
    # Only the tests whose full name (Describe and It, joined by '.') matches this wildcard.
    [string] $FullNameFilter = ''
)
$ErrorActionPreference = 'Stop'
Import-Module $PesterPath -Force
$env:GRID_TEST_MODULE = $ModulePath
$config = New-PesterConfiguration
$split = { param($list) @($list -split [regex]::Escape([IO.Path]::PathSeparator) | Where-Object { $_ }) }
$config.Run.Path = & $split $Path
if ($ExcludePath) { $config.Run.ExcludePath = & $split $ExcludePath }
if ($FullNameFilter) { $config.Filter.FullName = $FullNameFilter }
$config.Run.PassThru = $true
$config.Output.Verbosity = 'Normal'
$result = Invoke-Pester -Configuration $config
[pscustomobject]@{
    Passed  = $result.PassedCount
    Failed  = $result.FailedCount + $result.FailedBlocksCount + $result.FailedContainersCount
    Skipped = $result.SkippedCount
    # Named again by build.ps1 just above its closing line, so a failure shows however long the log.
    Failures = @(@($result.Failed | ForEach-Object { "$($_.ExpandedPath): $(@($_.ErrorRecord)[0])" }) +
        @($result.FailedBlocks | ForEach-Object { "$($_.ExpandedPath) (block): $(@($_.ErrorRecord)[0])" }) +
        @($result.FailedContainers | ForEach-Object { "$($_.Item) (file): $(@($_.ErrorRecord)[0])" }))
} | ConvertTo-Json -Depth 3 | Set-Content -Path $ResultFile
