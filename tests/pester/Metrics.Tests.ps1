# Metrics as users meet them, on both stores: read on import, sorted by in one pipeline, shown in the table.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Assert-S3Server
    $script:ModulePath = Import-GridTestModule
    $env:GRID_CONFIG_HOME = Join-Path $TestDrive 'config'

    # An experiment of a sweep as Lightning leaves it: a checkpoint and lightning_logs/version_0/metrics.csv
    # (omitted when $Csv is empty).
    function Import-Sweep([string] $Store, [string] $Experiment, [string] $Csv) {
        $src = Join-Path $TestDrive "src/$([guid]::NewGuid().ToString('N'))"
        New-Item -ItemType Directory -Force -Path "$src/lightning_logs/version_0" | Out-Null
        $bytes = [byte[]]::new(5000); [Random]::new($Experiment.Length).NextBytes($bytes)
        [IO.File]::WriteAllBytes("$src/last.ckpt", $bytes)
        if ($Csv) { [IO.File]::WriteAllText("$src/lightning_logs/version_0/metrics.csv", $Csv) }
        Import-GridArtifact -Path $src -Run sweep -Experiment $Experiment -Store $Store
    }
}

AfterAll {
    Remove-Module GridArtifacts -ErrorAction Ignore
    Remove-Item Env:GRID_CONFIG_HOME -ErrorAction Ignore
}

Describe 'Metrics (<Kind> store)' -ForEach @(
    @{ Kind = 'folder' }
    @{ Kind = 's3' }
) {
    BeforeAll {
        $store = if ($Kind -eq 's3') { New-TestS3Store metrics } else { Join-Path $TestDrive "store-$([guid]::NewGuid().ToString('N'))" }
        # val_loss 9 and 10 sort the other way as text; exp3 has no metrics at all, exp4 has others only.
        Import-Sweep $store exp0 "epoch,step,train_loss,val_loss`r`n0,9,0.8,`r`n0,9,,9`r`n1,19,0.7,`r`n" | Out-Null
        Import-Sweep $store exp1 "epoch,step,val_loss`n0,9,12`n1,19,10`n" | Out-Null
        Import-Sweep $store exp2 "epoch,step,val_loss`n0,9,0.5`n" | Out-Null
        Import-Sweep $store exp3 '' | Out-Null
        Import-Sweep $store exp4 "epoch,train_loss`n0,0.3`n" | Out-Null
    }

    It 'sorts a sweep by a metric in one pipeline, experiments without it first' {
        $sorted = Get-GridExperiment sweep -Store $store | Sort-Object { $_.Metrics['val_loss'] }
        $sorted.Experiment[0..1] | Sort-Object | Should -Be @('exp3', 'exp4')
        $sorted.Experiment[2..4] | Should -Be @('exp2', 'exp0', 'exp1')
        (Get-GridExperiment sweep -Store $store | Sort-Object { $_.Metrics['val_loss'] } -Descending).Experiment[0] | Should -Be 'exp1'
    }

    It 'reads the last row, empty cells filled, by name without case, a missing one $null' {
        $exp = Get-GridExperiment sweep-exp0 -Store $store
        $exp.Metrics['val_loss'] | Should -Be 9
        $exp.Metrics.VAL_LOSS | Should -Be 9
        $exp.Metrics['train_loss'] | Should -Be 0.7
        $exp.Metrics['step'] | Should -Be 19
        $exp.Metrics['val_acc'] | Should -BeNullOrEmpty
        $exp.MetricsSource | Should -Be 'lightning_logs/version_0/metrics.csv'
        (Get-GridExperiment sweep-exp3 -Store $store).Metrics.Count | Should -Be 0
        (Get-GridExperiment sweep-exp3 -Store $store).MetricsSource | Should -BeNullOrEmpty
    }

    It 'shows val_loss first in the table, then the rest by name, without the epoch and step counters' {
        $table = Get-GridExperiment sweep -Store $store | Format-Table | Out-String -Width 250
        $table | Should -Match 'Metrics'
        $table | Should -Match '(?m)sweep-exp0 .*val_loss=9 train_loss=0.7\s*$'
        $table | Should -Match '(?m)sweep-exp1 .*val_loss=10\s*$'
        $table | Should -Match '(?m)sweep-exp4 .*train_loss=0.3\s*$'
        $table | Should -Not -Match 'epoch=|step='
    }

    It 'warns of a malformed metrics.csv on import, and stores it and the rest as they are' {
        $src = Join-Path $TestDrive "bad-$Kind"
        New-Item -ItemType Directory -Force -Path "$src/lightning_logs/version_0" | Out-Null
        [IO.File]::WriteAllBytes("$src/model.pt", [byte[]](1..250))
        [IO.File]::WriteAllText("$src/lightning_logs/version_0/metrics.csv", "epoch,val_loss`n0,`"0.5`n")
        $exp = Import-GridArtifact -Path $src -Run bad -Store $store -WarningVariable warnings -WarningAction SilentlyContinue
        $warnings.Count | Should -Be 1
        "$($warnings[0])" | Should -Match "'lightning_logs/version_0/metrics.csv' gives no metrics: line 2: a quoted field is not closed"
        $exp.Status | Should -Be 'Succeeded'
        $exp.Metrics.Count | Should -Be 0
        $local = Get-ChildItem -Recurse -File $src | ForEach-Object { (Get-FileHash $_.FullName -Algorithm SHA256).Hash.ToLowerInvariant() } | Sort-Object
        $saved = Join-Path $TestDrive "saved-$Kind"
        Get-GridArtifact bad -Store $store | Save-GridArtifact -Destination $saved
        $stored = Get-ChildItem -Recurse -File $saved | ForEach-Object { (Get-FileHash $_.FullName -Algorithm SHA256).Hash.ToLowerInvariant() } | Sort-Object
        $stored | Should -Be $local
        (Get-GridArtifact bad -Store $store).Sha256 | Sort-Object | Should -Be $local
    }
}
