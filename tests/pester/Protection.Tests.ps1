# Protection as users meet it, on both stores: a protected run survives every removal path.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Assert-S3Server
    $script:ModulePath = Import-GridTestModule
    $env:GRID_CONFIG_HOME = Join-Path $TestDrive 'config'

    function New-Run([string] $Store, [string] $Name, [string] $Experiment = 'exp0') {
        $src = Join-Path $TestDrive "src/$([guid]::NewGuid().ToString('N'))"
        New-Item -ItemType Directory -Force -Path $src | Out-Null
        $bytes = [byte[]]::new(12000); [Random]::new($Name.Length).NextBytes($bytes)
        [IO.File]::WriteAllBytes("$src/model.pt", $bytes)
        Import-GridArtifact -Path $src -Run $Name -Experiment $Experiment -Store $Store | Out-Null
    }
    # One seed, copied into a fresh store for each test (no claim settling on a store without exclusive create).
    $script:seed = Join-Path $TestDrive 'seed'
    New-Run $seed 'precious'; New-Run $seed 'precious' 'exp1'; New-Run $seed 'plain'
    function Get-Hashes([string] $Store, [string] $Run) { Get-GridArtifact $Run -Store $Store | ForEach-Object { "$($_.ExperimentId)/$($_.Path)=$($_.Sha256)" } }
}

AfterAll {
    Remove-Module GridArtifacts -ErrorAction Ignore
    Remove-Item Env:GRID_CONFIG_HOME -ErrorAction Ignore
}

Describe 'Protect-GridRun and Unprotect-GridRun (<Kind> store)' -ForEach @(
    @{ Kind = 'folder' }
    @{ Kind = 's3' }
) {
    BeforeEach {
        $store = if ($Kind -eq 's3') { New-TestS3Store protect } else { Join-Path $TestDrive "store-$([guid]::NewGuid().ToString('N'))" }
        Get-GridRun -Store $seed | Copy-GridRun -Destination $store | Out-Null
    }

    It 'marks runs from the pipeline, shows the mark in listings, and keeps it once' {
        $runs = Get-GridRun precious -Store $store | Protect-GridRun -PassThru
        $runs.Name | Should -Be 'precious'
        $runs.Protected | Should -BeTrue
        Protect-GridRun prec* -Store $store # again, by wildcard: still protected
        (Get-GridRun -Store $store | Where-Object Protected).Name | Should -Be 'precious'
        (Get-GridRun plain -Store $store).Protected | Should -BeFalse
        (Get-GridRun -Store $store).Name | Should -Be @('plain', 'precious')
    }

    It 'refuses every removal with RunProtected, whatever -Force and -Confirm say, and goes on with the others' {
        Protect-GridRun precious -Store $store
        $before = Get-Hashes $store precious
        Remove-GridRun precious, plain -Store $store -Force -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue
        $err.Count | Should -Be 1
        $err[0].FullyQualifiedErrorId | Should -BeLike 'RunProtected,*'
        $err[0].CategoryInfo.Category | Should -Be 'PermissionDenied'
        (Get-GridRun -Store $store).Name | Should -Be 'precious'
        Remove-GridExperiment precious-exp1 -Store $store -Force -Confirm:$false -ErrorVariable err2 -ErrorAction SilentlyContinue
        $err2[0].FullyQualifiedErrorId | Should -BeLike 'RunProtected,*'
        Get-GridRun -Store $store | Remove-GridRun -Force -Confirm:$false -ErrorAction SilentlyContinue
        (Get-GridExperiment precious -Store $store).Id | Should -Be @('precious-exp0', 'precious-exp1')
        Get-Hashes $store precious | Should -Be $before
    }

    It 'unprotects, after which the run is removed as any other' {
        Protect-GridRun precious -Store $store
        Get-GridRun -Store $store | Where-Object Protected | Unprotect-GridRun -WhatIf
        (Get-GridRun precious -Store $store).Protected | Should -BeTrue
        Unprotect-GridRun precious -Store $store -Confirm:$false
        Unprotect-GridRun plain -Store $store -Confirm:$false # not protected: quiet
        (Get-GridRun precious -Store $store).Protected | Should -BeFalse
        Remove-GridRun precious -Store $store -Confirm:$false
        (Get-GridRun -Store $store).Name | Should -Be 'plain'
    }

    It 'names an unknown run' {
        Protect-GridRun no-such-run -Store $store -ErrorVariable err -ErrorAction SilentlyContinue
        $err[0].FullyQualifiedErrorId | Should -BeLike 'RunNotFound,*'
    }
}

Describe 'A protected run with experiments running and queued' {
    It 'is not stopped by Remove-GridRun -Force: nothing of it is touched' {
        $store = Join-Path $TestDrive 'store-busy'
        $work = Join-Path $TestDrive 'busy-work'
        Start-GridRun -Name 'busy-precious' -Command 'echo {i} > ran.txt; sleep 120' -Parameter @{ i = 1, 2 } -ThrottleLimit 1 -WorkingRoot $work -Store $store | Out-Null
        $deadline = (Get-Date).AddSeconds(30)
        while ((Get-GridExperiment busy-precious-exp0 -Store $store -ErrorAction Ignore).Status -ne 'Running' -and (Get-Date) -lt $deadline) { Start-Sleep -Milliseconds 200 }
        Protect-GridRun busy-precious -Store $store
        Remove-GridRun busy-precious -Store $store -Force -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue
        $err[0].FullyQualifiedErrorId | Should -BeLike 'RunProtected,*'
        (Get-GridExperiment busy-precious -Store $store).Status | Should -Be @('Running', 'Queued')
        # No stop was asked for: the running experiment's stop request is not in the store.
        Get-ChildItem -Recurse -File (Join-Path $store 'runs/busy-precious') | Where-Object Name -like '*stop*' | Should -BeNullOrEmpty
        Stop-GridRun busy-precious -Store $store
        $deadline = (Get-Date).AddSeconds(60)
        while ((Get-GridRun busy-precious -Store $store).Status -in 'Running', 'Queued', 'Syncing' -and (Get-Date) -lt $deadline) { Start-Sleep -Milliseconds 250 }
        (Get-GridRun busy-precious -Store $store).Status | Should -Be 'Stopped'
        (Get-GridRun busy-precious -Store $store).Protected | Should -BeTrue
    }
}
