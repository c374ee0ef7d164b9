# Runs the experiments of one run, at most ThrottleLimit at once, each under its capture agent.
# Started detached by Start-GridRun, so the run goes on after the session that started it closes.
param([Parameter(Mandatory)] [string] $PlanPath)
$ErrorActionPreference = 'Stop'
$plan = Get-Content -Raw -LiteralPath $PlanPath | ConvertFrom-Json
$module = Join-Path $PSScriptRoot 'GridArtifacts.psd1'
$plan.Experiments | ForEach-Object -ThrottleLimit $plan.ThrottleLimit -Parallel {
    $p = $using:plan
    $e = $_
    try {
        Import-Module $using:module
        $parameters = @{}
        foreach ($prop in $e.Parameters.PSObject.Properties) { $parameters[$prop.Name] = $prop.Value }
        $roots = @($p.ArtifactPath | Where-Object { $_ })
        New-Item -ItemType Directory -Force -Path $e.WorkingDirectory | Out-Null
        # -Queued: an experiment removed or stopped while it waited runs nothing and creates nothing.
        $null = Invoke-GridExperiment -Run $p.Run -Experiment $e.Experiment -Store $p.Store -WorkingDirectory $e.WorkingDirectory `
            -ArtifactPath $roots -Parameter $parameters -Queued -Command $e.Command -WarningAction SilentlyContinue -ErrorAction Stop
    }
    catch {
        # One experiment's end (refused, removed, a store error) is logged and never ends the others.
        [Console]::Error.WriteLine("$($p.Run)-$($e.Experiment): $($_.FullyQualifiedErrorId): $($_.Exception.Message)")
    }
}
