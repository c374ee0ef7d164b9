<#
.SYNOPSIS
    The main job on the embedded default store: record a sample training run, list it, save its artifacts.
.DESCRIPTION
    Writes what a small training script would (metrics, checkpoints, plots, logs, in several folders),
    stores it as a two-experiment run in the default local store (~/.grid/store unless GRID_STORE or
    Set-GridStore says otherwise), then lists runs, experiments and artifacts and saves them to
    ./grid_artifacts, verified against their SHA-256.
#>
param(
    [string] $ModulePath = (Join-Path $PSScriptRoot '../out/GridArtifacts')
)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath

$run = 'hello-' + (Get-Date -Format 'yyyyMMdd-HHmmss')
$work = Join-Path ([IO.Path]::GetTempPath()) "grid-demo-$([guid]::NewGuid().ToString('N'))"
try {
    foreach ($i in 0, 1) {
        $lr = @(0.1, 0.01)[$i]
        $out = Join-Path $work "exp$i"
        foreach ($dir in 'checkpoints', 'logs', 'plots') { New-Item -ItemType Directory -Force -Path (Join-Path $out $dir) | Out-Null }
        $rows = foreach ($epoch in 1..5) { '{0},{1:F4}' -f $epoch, (1 / ($epoch * (1 + $i))) }
        Set-Content -Path (Join-Path $out 'metrics.csv') -Value (@('epoch,loss') + $rows)
        $weights = [byte[]]::new(256KB); [Random]::new($i).NextBytes($weights)
        [IO.File]::WriteAllBytes((Join-Path $out 'checkpoints/epoch=5.ckpt'), $weights)
        Set-Content -Path (Join-Path $out 'logs/train.log') -Value "lr=$lr finished 5 epochs"
        Set-Content -Path (Join-Path $out 'plots/loss.svg') -Value '<svg xmlns="http://www.w3.org/2000/svg"/>'
        Import-GridArtifact -Path $out -Run $run -Experiment "exp$i" -Command 'python hello.py' -Parameter @{ lr = $lr } | Out-Null
    }

    Write-Host "`nStore: $((Get-GridStore).Location)" -ForegroundColor Cyan
    Write-Host "`n> Get-GridRun $run" -ForegroundColor Cyan
    Get-GridRun $run | Format-Table | Out-Host
    Write-Host "> Get-GridExperiment $run" -ForegroundColor Cyan
    Get-GridExperiment $run | Format-Table | Out-Host
    Write-Host "> Get-GridArtifact $run" -ForegroundColor Cyan
    Get-GridArtifact $run | Format-Table | Out-Host
    Write-Host "> Get-GridRun $run | Get-GridExperiment | Get-GridArtifact | Save-GridArtifact -PassThru" -ForegroundColor Cyan
    Get-GridRun $run | Get-GridExperiment | Get-GridArtifact | Save-GridArtifact -PassThru | Format-Table | Out-Host
}
finally {
    Remove-Item -Recurse -Force $work -ErrorAction Ignore
}
