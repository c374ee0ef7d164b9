# The module as users meet it: imported from out/ in a fresh pwsh, on a folder store in TestDrive.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:ModulePath = Import-GridTestModule
    $env:GRID_CONFIG_HOME = Join-Path $TestDrive 'config'
    $env:GRID_STORE = Join-Path $TestDrive 'store'

    function New-SampleRun {
        param([string] $Run, [string] $Experiment = 'exp0', [int] $Seed = 1)
        $src = Join-Path $TestDrive "src/$Run/$Experiment"
        $rnd = [Random]::new($Seed)
        foreach ($rel in 'metrics.csv', 'checkpoints/epoch=1.ckpt', 'plots/loss curve.png', 'naïve/日本語.txt') {
            $file = Join-Path $src $rel
            New-Item -ItemType Directory -Force -Path (Split-Path $file) | Out-Null
            $bytes = [byte[]]::new(1000 + $rnd.Next(5000)); $rnd.NextBytes($bytes)
            [IO.File]::WriteAllBytes($file, $bytes)
        }
        Import-GridArtifact -Path $src -Run $Run -Experiment $Experiment
    }


    function Get-Sha256([string] $Path) { (Get-FileHash -LiteralPath $Path -Algorithm SHA256).Hash.ToLowerInvariant() }

    New-SampleRun -Run 'first-run' -Seed 1 | Out-Null
    New-SampleRun -Run 'first-run' -Experiment 'exp1' -Seed 2 | Out-Null
    Start-Sleep -Milliseconds 20
    New-SampleRun -Run 'second-run' -Seed 3 | Out-Null
}

AfterAll {
    Remove-Module GridArtifacts -ErrorAction Ignore
    Remove-Item Env:GRID_STORE, Env:GRID_CONFIG_HOME -ErrorAction Ignore
}

Describe 'The module' {
    It 'exports exactly the documented commands' {
        $commands = (Get-Command -Module GridArtifacts).Name | Sort-Object
        $commands | Should -Be @('Add-GridTag', 'Compare-GridExperiment', 'Copy-GridRun', 'Get-GridArtifact', 'Get-GridExperiment', 'Get-GridLog', 'Get-GridRun', 'Get-GridStore', 'Get-GridTransferOption', 'grid', 'Import-GridArtifact', 'Invoke-GridExperiment', 'Measure-GridStore', 'New-GridArtifactLink', 'Protect-GridRun', 'Remove-GridExperiment', 'Remove-GridRun', 'Remove-GridTag', 'Remove-GridWorkingDirectory', 'Save-GridArtifact', 'Set-GridStore', 'Set-GridTransferOption', 'Show-GridArtifact', 'Start-GridArtifactServer', 'Start-GridRun', 'Stop-GridArtifactServer', 'Stop-GridRun', 'Unprotect-GridRun')
    }

    It 'loads its engine in its own load context and the model in the default one' {
        $engine = [GridArtifacts.Commands.GetGridRunCommand].Assembly.GetReferencedAssemblies() | Where-Object Name -eq 'GridArtifacts.Core'
        $engine | Should -Not -BeNullOrEmpty
        $run = Get-GridRun first-run
        [System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext($run.GetType().Assembly).Name | Should -Be 'Default'
        $core = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'GridArtifacts.Core' }
        @($core).Count | Should -Be 1
        [System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext($core).Name | Should -Be 'GridArtifacts'
        $run | Should -BeOfType ([GridArtifacts.Model.GridRun])
    }

    It 'ships no System.Management.Automation' {
        Get-ChildItem $script:ModulePath -Recurse -Filter 'System.Management.Automation*' | Should -BeNullOrEmpty
    }

    It 'formats runs, experiments and artifacts as tables with readable sizes' {
        $text = Get-GridArtifact first-run-exp0 | Out-String -Width 200
        $text | Should -Match 'Experiment\s+Path\s+Size\s+LastModified'
        $text | Should -Match 'first-run-exp0\s+metrics.csv\s+\d+(\.\d)? KiB'
        (Get-GridRun | Out-String -Width 200) | Should -Match 'Name\s+Status\s+Experiments'
        (Get-GridExperiment first-run | Out-String -Width 200) | Should -Match 'first-run-exp1\s+Succeeded'
    }
}

Describe 'Choosing the store' {
    It 'shows where the store is and why' {
        $info = Get-GridStore
        $info.Location | Should -Be (Join-Path $TestDrive 'store')
        $info.Source | Should -Be 'Environment'
        (Get-GridStore -Store ./elsewhere).Location | Should -Be (Join-Path (Get-Location).ProviderPath 'elsewhere')
    }

    It 'persists Set-GridStore for later sessions, below the environment variable' {
        Push-Location $TestDrive
        try {
            Set-GridStore ./saved-store -WarningAction SilentlyContinue
            $saved = Join-Path $TestDrive 'saved-store'
            $env:GRID_STORE = $null
            (Get-GridStore).Location | Should -Be $saved
            (Get-GridStore).Source | Should -Be 'Config'
            # A new session reads the same setting.
            $child = Invoke-ChildPwsh "`$env:GRID_CONFIG_HOME = '$env:GRID_CONFIG_HOME'; Import-Module '$script:ModulePath'; (Get-GridStore).Location"
            $child | Should -Be $saved
            Set-GridStore -Default
            (Get-GridStore).Source | Should -Be 'Default'
        }
        finally {
            Pop-Location
            $env:GRID_STORE = Join-Path $TestDrive 'store'
        }
    }
}

Describe 'Listing' {
    It 'lists runs newest first' {
        (Get-GridRun).Name | Should -Be @('second-run', 'first-run')
    }

    It 'matches run names with wildcards and reports unknown names as ObjectNotFound' {
        (Get-GridRun -Name 'fir*').Name | Should -Be 'first-run'
        $runs = Get-GridRun first-run, no-such-run -ErrorVariable err -ErrorAction SilentlyContinue
        $runs.Name | Should -Be 'first-run'
        $err.Count | Should -Be 1
        $err[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $err[0].FullyQualifiedErrorId | Should -BeLike 'RunNotFound,*'
        $err[0].Exception.Message | Should -BeLike "*no-such-run*"
    }

    It 'gives grid status and grid history direct equivalents' {
        @(Get-GridRun -Active).Count | Should -Be 0
        (Get-GridRun -Finished).Name | Should -Be @('second-run', 'first-run')
    }

    It 'lists experiments by run, by run-expN and from runs on the pipeline' {
        (Get-GridExperiment first-run).Id | Should -Be @('first-run-exp0', 'first-run-exp1')
        (Get-GridExperiment first-run-exp1).Experiment | Should -Be 'exp1'
        (Get-GridRun | Get-GridExperiment).Id | Should -Be @('second-run-exp0', 'first-run-exp0', 'first-run-exp1')
        (Get-GridExperiment first-run -Experiment 'exp1').Id | Should -Be 'first-run-exp1'
        Get-GridExperiment first-run-exp9 -ErrorVariable err -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $err[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }

    It 'filters artifacts with -Path, -Exclude and -Match' {
        (Get-GridArtifact first-run-exp0).Count | Should -Be 4
        (Get-GridArtifact first-run -Path '*.ckpt').ExperimentId | Should -Be @('first-run-exp0', 'first-run-exp1')
        (Get-GridArtifact second-run -Exclude 'plots/*', '*.ckpt').Path | Should -Be @('metrics.csv', 'naïve/日本語.txt')
        (Get-GridArtifact second-run -Match 'loss|metrics').Path | Should -Be @('metrics.csv', 'plots/loss curve.png')
        (Get-GridArtifact second-run -Path 'naïve/日本語.txt').Sha256 | Should -Match '^[0-9a-f]{64}$'
    }

    It 'binds runs and experiments from the pipeline by property name' {
        (Get-GridRun second-run | Get-GridArtifact).Count | Should -Be 4
        (Get-GridExperiment first-run | Get-GridArtifact).Count | Should -Be 8
        ([pscustomobject]@{ Run = 'first-run'; Experiment = 'exp1' } | Get-GridArtifact).Count | Should -Be 4
    }

    It 'looks runs piped from two stores up each in its own store' {
        $a = Join-Path $TestDrive 'pipe-a'; $b = Join-Path $TestDrive 'pipe-b'
        $src = Join-Path $TestDrive 'src/first-run/exp0'
        Import-GridArtifact -Path $src -Run in-a -Store $a | Out-Null
        Import-GridArtifact -Path $src -Run in-b -Store $b | Out-Null
        $runs = @(Get-GridRun -Store $a) + @(Get-GridRun -Store $b) | Get-GridRun -ErrorVariable err
        $err | Should -BeNullOrEmpty
        @($runs | ForEach-Object { "$($_.Name)@$($_.Store)" }) | Sort-Object | Should -Be @("in-a@$a", "in-b@$b")
    }

    It 'completes run names on Tab' {
        $completion = TabExpansion2 -inputScript 'Get-GridArtifact fir' -cursorColumn 20
        $completion.CompletionMatches.CompletionText | Should -Contain 'first-run'
    }
}

Describe 'Saving' {
    It 'saves the whole pipeline byte-exact into <dest>/<run>/<exp>/<path>' {
        $dest = Join-Path $TestDrive 'pipeline'
        $results = Get-GridRun | Get-GridExperiment | Get-GridArtifact | Save-GridArtifact -Destination $dest -PassThru
        $results.Count | Should -Be 12
        foreach ($a in Get-GridArtifact *) {
            $local = Join-Path $dest $a.Run $a.Experiment $a.Path
            Get-Sha256 $local | Should -Be $a.Sha256
        }
        Get-ChildItem $dest -Recurse -Force -Filter '*.part' | Should -BeNullOrEmpty
    }

    It 'outputs nothing without -PassThru and skips identical files' {
        $dest = Join-Path $TestDrive 'again'
        Save-GridArtifact first-run-exp0 -Destination $dest | Should -BeNullOrEmpty
        (Save-GridArtifact first-run-exp0 -Destination $dest -PassThru).Action | Sort-Object -Unique | Should -Be 'Skipped'
        (Save-GridArtifact first-run-exp0 -Destination $dest -PassThru -Force).Action | Sort-Object -Unique | Should -Be 'Overwritten'
    }

    It 'saves runs piped straight in' {
        $dest = Join-Path $TestDrive 'piped-run'
        (Get-GridRun second-run | Save-GridArtifact -Destination $dest -PassThru).Count | Should -Be 4
    }

    It 'resolves the default destination against the PowerShell location, not the process directory' {
        $here = Join-Path $TestDrive 'location'
        New-Item -ItemType Directory -Path $here | Out-Null
        Push-Location $here
        try {
            [Environment]::CurrentDirectory | Should -Not -Be $here
            Save-GridArtifact second-run -Path metrics.csv
            Join-Path $here 'grid_artifacts/second-run/exp0/metrics.csv' | Should -Exist
        }
        finally { Pop-Location }
    }

    It 'with -WhatIf writes nothing and says what would move' {
        $dest = Join-Path $TestDrive 'whatif'
        Save-GridArtifact first-run-exp0 -Destination $dest -Path metrics.csv
        # What-if messages go to the host, so read them from a child session's output.
        $said = Invoke-ChildPwsh "`$env:GRID_STORE = '$env:GRID_STORE'; Import-Module '$script:ModulePath'; Save-GridArtifact first-run -Destination '$dest' -WhatIf" | Out-String
        $said | Should -Match 'Save 7 artifact\(s\), [\d.]+ KiB to fetch; 1 already up to date'
        Get-ChildItem $dest -Recurse -File | Should -HaveCount 1
    }

    It 'ends with a summary in the information stream' {
        $dest = Join-Path $TestDrive 'summary'
        $null = Save-GridArtifact second-run -Destination $dest -InformationVariable info
        ($info | Where-Object Tags -Contains 'Summary').MessageData | Should -Match '^Saved 4, skipped 0 \(already up to date\), failed 0 of 4 artifact\(s\)'
    }

    It 'shares process-wide transfer limits that Set-GridTransferOption changes' {
        $before = Get-GridTransferOption
        try {
            $after = Set-GridTransferOption -MaxConcurrency 4 -BandwidthLimit 50MB -PassThru
            $after.MaxConcurrency | Should -Be 4
            $after.BandwidthLimit | Should -Be 50MB
            (Get-GridTransferOption).MaxConcurrency | Should -Be 4
            $before.AdaptiveConcurrency | Should -BeTrue
            (Set-GridTransferOption -AdaptiveConcurrency $false -PassThru).AdaptiveConcurrency | Should -BeFalse
            (Get-GridTransferOption).MaxConcurrency | Should -Be 4
            $dest = Join-Path $TestDrive 'limited'
            (Save-GridArtifact first-run -Destination $dest -PassThru).Count | Should -Be 8
            { Set-GridTransferOption -MemoryBudget 1GB } | Should -Throw -ErrorId 'ParameterArgumentValidationError,GridArtifacts.Commands.SetGridTransferOptionCommand'
        }
        finally {
            Set-GridTransferOption -MaxConcurrency $before.MaxConcurrency -BandwidthLimit 0 -AdaptiveConcurrency $true
        }
    }

    Context 'every traversal attempt is refused' {
        It 'refuses <Name> and writes nothing outside the destination' -ForEach @(
            @{ Name = '../escape.txt' }
            @{ Name = '../../escape.txt' }
            @{ Name = 'a/../../escape.txt' }
            @{ Name = '/tmp/grid-escape.txt' }
            @{ Name = 'C:/escape.txt' }
            @{ Name = 'C:escape.txt' }
            @{ Name = '..\..\escape.txt' }
            @{ Name = '\\server\share\escape.txt' }
            @{ Name = '..' }
        ) {
            $jail = Join-Path $TestDrive ('jail-' + [guid]::NewGuid())
            $dest = Join-Path $jail 'dest'
            $good = Get-GridArtifact second-run -Path metrics.csv
            $bad = [GridArtifacts.Model.GridArtifact]::new($good.Run, $good.Experiment, $Name, $good.Store)
            $saved = $bad, $good | Save-GridArtifact -Destination $dest -PassThru -ErrorVariable err -ErrorAction SilentlyContinue
            $err.Count | Should -Be 1
            $err[0].CategoryInfo.Category | Should -Be 'SecurityError'
            $err[0].FullyQualifiedErrorId | Should -BeLike 'UnsafeArtifactPath,*'
            $saved.Path | Should -Be 'metrics.csv'
            (Get-ChildItem $jail -Recurse -File).FullName | Should -Be (Join-Path $dest 'second-run/exp0/metrics.csv')
            '/tmp/grid-escape.txt' | Should -Not -Exist
        }

        It 'refuses a stored name holding backslashes' -Skip:$IsWindows {
            $artifacts = Join-Path $env:GRID_STORE 'runs/second-run/exp0/artifacts'
            # [IO.Path] keeps the backslashes; PowerShell's own path cmdlets would turn them into separators.
            $evil = [IO.Path]::Combine($artifacts, '..\..\evil.txt')
            [IO.File]::WriteAllText($evil, 'evil')
            try {
                $dest = Join-Path $TestDrive 'backslash'
                Save-GridArtifact second-run -Destination $dest -ErrorVariable err -ErrorAction SilentlyContinue
                $err.Count | Should -Be 1
                $err[0].CategoryInfo.Category | Should -Be 'SecurityError'
                Get-ChildItem $TestDrive -Recurse -Filter '*evil*' | Where-Object FullName -NotLike "$env:GRID_STORE*" | Should -BeNullOrEmpty
            }
            finally { [IO.File]::Delete($evil) }
        }
    }
}

Describe 'The grid command' {
    It 'maps the product verbs onto the cmdlets' {
        @(grid status).Count | Should -Be 0
        (grid history).Name | Should -Be @('second-run', 'first-run')
        (grid status first-run).Id | Should -Be @('first-run-exp0', 'first-run-exp1')
    }

    It 'downloads several runs and experiments with --download_dir and -m, never overwriting same-named files' {
        $dest = Join-Path $TestDrive 'grid-cli'
        $saved = grid artifacts first-run-exp0 first-run-exp1 second-run --download_dir $dest -m 'metrics'
        $saved.Count | Should -Be 3
        foreach ($id in 'first-run/exp0', 'first-run/exp1', 'second-run/exp0') {
            Join-Path $dest $id 'metrics.csv' | Should -Exist
        }
        (Get-Sha256 (Join-Path $dest 'first-run/exp0/metrics.csv')) | Should -Not -Be (Get-Sha256 (Join-Path $dest 'first-run/exp1/metrics.csv'))
        (grid artifacts second-run --download_dir=$dest --match_regex '\.ckpt$').Path | Should -Be 'checkpoints/epoch=1.ckpt'
    }

    It 'says what is wrong with a bad option' {
        { grid artifacts first-run --bogus } | Should -Throw -ErrorId 'GridUnknownOption,grid'
        { grid artifacts } | Should -Throw -ErrorId 'GridRunMissing,grid'
    }
}
