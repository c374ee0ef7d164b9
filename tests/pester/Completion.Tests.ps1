# Tab completion of runs, run-expN ids and experiment names, through TabExpansion2 as the console asks.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:ModulePath = Import-GridTestModule
    $env:GRID_CONFIG_HOME = Join-Path $TestDrive 'config'
    $script:Store = Join-Path $TestDrive 'store'
    $script:Other = Join-Path $TestDrive 'other-store'
    $env:GRID_STORE = $Store
    $src = Join-Path $TestDrive 'src'
    New-Item -ItemType Directory -Force -Path $src | Out-Null
    Set-Content -Path (Join-Path $src 'metrics.csv') -Value 'epoch,loss'
    foreach ($e in 'exp0', 'exp1', 'exp2', 'exp10') { Import-GridArtifact $src -Run 'tab-run' -Experiment $e | Out-Null }
    Import-GridArtifact $src -Run 'tab-run-2' | Out-Null
    Import-GridArtifact $src -Run 'tabby' -Experiment 'exp3' | Out-Null
    Import-GridArtifact $src -Run 'elsewhere' -Store $Other | Out-Null

    function Complete([string] $Line) {
        (TabExpansion2 -inputScript $Line -cursorColumn $Line.Length).CompletionMatches.CompletionText
    }
}

AfterAll {
    Remove-Module GridArtifacts -ErrorAction Ignore
    Remove-Item Env:GRID_STORE, Env:GRID_CONFIG_HOME -ErrorAction Ignore
}

Describe 'Tab completion' {
    It 'completes run names where only runs are accepted' {
        Complete 'Get-GridRun tab' | Should -Be @('tab-run', 'tab-run-2', 'tabby')
        Complete 'Copy-GridRun tab-run-' | Should -Be @('tab-run-2')
        Complete 'Measure-GridStore tab' | Should -Be @('tab-run', 'tab-run-2', 'tabby')
    }

    It 'completes run-expN ids once a run name and a hyphen are typed, each run followed by its experiments in index order (<Command>)' -ForEach @(
        @{ Command = 'Get-GridExperiment' }, @{ Command = 'Get-GridArtifact' }, @{ Command = 'Save-GridArtifact' }, @{ Command = 'Get-GridLog' }, @{ Command = 'Show-GridArtifact' }, @{ Command = 'Compare-GridExperiment' }
    ) {
        Complete "$Command tab-run-" | Should -Be @('tab-run-exp0', 'tab-run-exp1', 'tab-run-exp2', 'tab-run-exp10', 'tab-run-2')
        Complete "$Command tab-r" | Should -Be @('tab-run', 'tab-run-2')
        Complete "$Command tab-run-exp1" | Should -Be @('tab-run-exp1', 'tab-run-exp10')
        Complete "$Command tabb" | Should -Be @('tabby')
    }

    It 'completes both sides of Compare-GridExperiment, by position and by name' {
        Complete 'Compare-GridExperiment tab-run-exp0 tab-run-exp1' | Should -Be @('tab-run-exp1', 'tab-run-exp10')
        Complete 'Compare-GridExperiment -Difference tabb' | Should -Be @('tabby')
        Complete 'Compare-GridExperiment -Reference tab-run-2 -Difference tab-r' | Should -Be @('tab-run', 'tab-run-2')
    }

    It 'completes the experiments of the run on the command line, by name, by position, as an id or a wildcard' {
        Complete 'Get-GridExperiment -Run tab-run -Experiment ' | Should -Be @('exp0', 'exp1', 'exp2', 'exp10')
        Complete 'Get-GridArtifact tab-run -Experiment exp1' | Should -Be @('exp1', 'exp10')
        Complete 'Save-GridArtifact tab-run-exp0 -Experiment ' | Should -Be @('exp0', 'exp1', 'exp2', 'exp10')
        Complete 'Get-GridExperiment tabby, tab-run-2 -Experiment ' | Should -Be @('exp0', 'exp3')
        Complete "Get-GridExperiment 'tab*' -Experiment exp1" | Should -Be @('exp1', 'exp10')
        Complete 'Remove-GridExperiment -Run tabby -Experiment ' | Should -Be @('exp3')
        Complete 'Show-GridArtifact tab-run -Experiment exp1' | Should -Be @('exp1', 'exp10')
    }

    It 'offers no experiments before a run is named, nor for a run that does not exist' {
        Complete 'Get-GridExperiment -Experiment ' | Should -BeNullOrEmpty
        Complete 'Get-GridExperiment -Run no-such-run -Experiment ' | Should -BeNullOrEmpty
    }

    It 'asks the store typed with -Store, not the one in effect' {
        Complete "Get-GridRun -Store '$Other' " | Should -Be @('elsewhere')
        Complete "Get-GridExperiment -Store '$Other' -Run elsewhere -Experiment " | Should -Be @('exp0')
        Complete 'Get-GridRun else' | Should -BeNullOrEmpty
    }

    It 'sees a run made after the previous completion' {
        Complete 'Get-GridArtifact fresh' | Should -BeNullOrEmpty
        Import-GridArtifact (Join-Path $TestDrive 'src') -Run 'fresh-run' | Out-Null
        Complete 'Get-GridArtifact fresh' | Should -Be @('fresh-run')
    }

    It 'returns nothing, quickly and without an error, when the store cannot be reached' {
        $Error.Clear()
        $unreachable = 's3://nobucket?endpoint=http://127.0.0.1:1'
        $elapsed = Measure-Command {
            $runs = Complete "Get-GridArtifact -Store '$unreachable' tab"
            $experiments = Complete "Get-GridExperiment -Store '$unreachable' -Run tab-run -Experiment "
        }
        $runs | Should -BeNullOrEmpty
        $experiments | Should -BeNullOrEmpty
        $elapsed.TotalSeconds | Should -BeLessThan 5
        $Error.Count | Should -Be 0
    }

    It 'completes the tags in the store on every -Tag and -ExcludeTag (<Command> -<Parameter>)' -ForEach @(
        @{ Command = 'Get-GridRun'; Parameter = 'Tag' }, @{ Command = 'Get-GridExperiment'; Parameter = 'Tag' },
        @{ Command = 'Start-GridRun'; Parameter = 'Tag' }, @{ Command = 'Invoke-GridExperiment'; Parameter = 'Tag' },
        @{ Command = 'Import-GridArtifact'; Parameter = 'Tag' }, @{ Command = 'Add-GridTag'; Parameter = 'Tag' },
        @{ Command = 'Remove-GridRun'; Parameter = 'Tag' }, @{ Command = 'Remove-GridRun'; Parameter = 'ExcludeTag' },
        @{ Command = 'Remove-GridExperiment'; Parameter = 'Tag' }, @{ Command = 'Remove-GridExperiment'; Parameter = 'ExcludeTag' },
        @{ Command = 'Measure-GridStore'; Parameter = 'Tag' }
    ) {
        Add-GridTag tab-run keep, best
        Add-GridTag tabby-exp3 kept
        Complete "$Command -$Parameter ke" | Should -Be @('keep', 'kept')
        Complete "$Command -$Parameter " | Should -Be @('best', 'keep', 'kept')
    }

    It 'completes on Remove-GridTag only the tags of the run named' {
        Add-GridTag tab-run keep, best
        Add-GridTag tabby-exp3 kept
        Complete 'Remove-GridTag tabby -Tag ' | Should -Be @('kept')
        Complete 'Remove-GridTag -Run tab-run -Tag b' | Should -Be @('best')
    }

    It 'completes -By with the metrics of the runs named' {
        $src = Join-Path $TestDrive 'with-metrics'
        New-Item -ItemType Directory -Force -Path $src | Out-Null
        Set-Content -Path (Join-Path $src 'metrics.json') -Value '{"val_loss": 0.25, "val_acc": 0.9, "epoch": 3}'
        Import-GridArtifact $src -Run 'tab-metrics' | Out-Null
        Complete 'Remove-GridExperiment tab-metrics -KeepBest 1 -By val_' | Should -Be @('val_acc', 'val_loss')
        Complete 'Remove-GridExperiment tabby -KeepBest 1 -By ' | Should -BeNullOrEmpty
    }

    It 'returns nothing for a store that is not a valid location' {
        Complete "Get-GridRun -Store 's3://bucket?nonsense=1' " | Should -BeNullOrEmpty
    }
}
