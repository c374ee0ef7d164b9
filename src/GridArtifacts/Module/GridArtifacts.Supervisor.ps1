# Runs the experiments of one run, at most ThrottleLimit at once, each under its capture agent.
# Started detached by Start-GridRun, so the run goes on after the session that started it closes.
param([Parameter(Mandatory)] [string] $PlanPath)
$ErrorActionPreference = 'Stop'
$plan = Get-Content -Raw -LiteralPath $PlanPath | ConvertFrom-Json
$module = Join-Path $PSScriptRoot 'GridArtifacts.psd1'
$plan.Experiments | ForEach-Object -ThrottleLimit $plan.ThrottleLimit -Parallel {
    $p = $using:plan
    Import-Module $using:module
    $parameters = @{}
    foreach ($prop in $_.Parameters.PSObject.Properties) { $parameters[$prop.Name] = $prop.Value }
    $roots = @($p.ArtifactPath | Where-Object { $_ })
    New-Item -ItemType Directory -Force -Path $_.WorkingDirectory | Out-Null
    $null = Invoke-GridExperiment -Run $p.Run -Experiment $_.Experiment -Store $p.Store -WorkingDirectory $_.WorkingDirectory `
        -ArtifactPath $roots -Parameter $parameters -Queued -Command $_.Command -WarningAction SilentlyContinue
}
