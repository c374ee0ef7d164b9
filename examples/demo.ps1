<#
.SYNOPSIS
    The main job on the embedded default store: run examples/hello.ps1 as a two-experiment sweep under
    the capture agent, list its artifacts, and save them.
.DESCRIPTION
    Start-GridRun runs hello.ps1 once per learning rate, each in a folder of its own; every file the
    script writes is synced to the default local store (~/.grid/store unless GRID_STORE or
    Set-GridStore says otherwise) while it runs and once more when it ends. Then the run's
    experiments and artifacts are listed and saved to ./grid_artifacts, verified by SHA-256.
#>
param(
    [string] $ModulePath = (Join-Path $PSScriptRoot '../out/GridArtifacts')
)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath

Write-Host "`nStore: $((Get-GridStore).Location)" -ForegroundColor Cyan
Write-Host "> Start-GridRun -FilePath examples/hello.ps1 -Parameter @{ lr = 0.1, 0.01 } -Wait" -ForegroundColor Cyan
$run = Start-GridRun -FilePath (Join-Path $PSScriptRoot 'hello.ps1') -Parameter @{ lr = 0.1, 0.01 } -Wait
$run | Format-Table | Out-Host
if ($run.Status -ne 'Succeeded') { throw "The run ended $($run.Status)." }

Write-Host "> Get-GridExperiment $($run.Name)" -ForegroundColor Cyan
Get-GridExperiment $run.Name | Format-Table | Out-Host
Write-Host "> Get-GridArtifact $($run.Name)" -ForegroundColor Cyan
Get-GridArtifact $run.Name | Format-Table | Out-Host
Write-Host "> Get-GridLog $($run.Name)-exp0" -ForegroundColor Cyan
Get-GridLog "$($run.Name)-exp0" | Out-Host
Write-Host "`n> Get-GridRun $($run.Name) | Get-GridExperiment | Get-GridArtifact | Save-GridArtifact -PassThru" -ForegroundColor Cyan
Get-GridRun $run.Name | Get-GridExperiment | Get-GridArtifact | Save-GridArtifact -PassThru | Format-Table | Out-Host
