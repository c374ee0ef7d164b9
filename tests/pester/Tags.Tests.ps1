# Tags as users meet them, on both stores: set, changed, filtered, copied and completed.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Assert-S3Server
    $script:ModulePath = Import-GridTestModule
    $env:GRID_CONFIG_HOME = Join-Path $TestDrive 'config'

    function New-Source([string] $Seed) {
        $src = Join-Path $TestDrive "src/$([guid]::NewGuid().ToString('N'))"
        New-Item -ItemType Directory -Force -Path $src | Out-Null
        $bytes = [byte[]]::new(5000); [Random]::new($Seed.Length).NextBytes($bytes)
        [IO.File]::WriteAllBytes("$src/model.pt", $bytes)
        $src
    }
    # One seed, copied into a fresh store for each test (a copy brings the tags, and costs no claim
    # settling on a store without exclusive create).
    $script:seed = Join-Path $TestDrive 'seed'
    $script:importedTags = (Import-GridArtifact -Path (New-Source a) -Run alpha -Store $seed -Tag Sweep).Tags
    Import-GridArtifact -Path (New-Source b) -Run alpha -Experiment exp1 -Store $seed | Out-Null
    Import-GridArtifact -Path (New-Source c) -Run beta -Store $seed | Out-Null
}

AfterAll {
    Remove-Module GridArtifacts -ErrorAction Ignore
    Remove-Item Env:GRID_CONFIG_HOME -ErrorAction Ignore
}

Describe 'Tags (<Kind> store)' -ForEach @(
    @{ Kind = 'folder' }
    @{ Kind = 's3' }
) {
    BeforeEach {
        $store = if ($Kind -eq 's3') { New-TestS3Store tags } else { Join-Path $TestDrive "store-$([guid]::NewGuid().ToString('N'))" }
        Get-GridRun -Store $seed | Copy-GridRun -Destination $store | Out-Null
    }

    It 'round-trips and filters, with wildcards, on runs and experiments' {
        $importedTags | Should -Be 'sweep'
        $tagged = Add-GridTag beta Keep, best -Store $store -PassThru
        $tagged.Tags | Should -Be @('best', 'keep')
        Add-GridTag alpha-exp1 keep -Store $store
        (Get-GridRun -Store $store -Tag 'ke*').Name | Should -Be @('beta', 'alpha')
        (Get-GridRun -Store $store -Tag sweep).Name | Should -Be 'alpha'
        (Get-GridRun alpha -Store $store).Tags | Should -Be @('keep', 'sweep')
        (Get-GridExperiment alpha -Store $store -Tag keep).Id | Should -Be 'alpha-exp1'
        (Get-GridExperiment alpha-exp1 -Store $store).OwnTags | Should -Be 'keep'
        (Get-GridRun -Store $store -Tag nothing) | Should -BeNullOrEmpty

        Get-GridRun beta -Store $store | Remove-GridTag -Tag b* -Store $store
        (Get-GridRun beta -Store $store).Tags | Should -Be 'keep'
        Remove-GridTag alpha -Tag keep -Store $store          # from the run: from its experiments too
        (Get-GridRun alpha -Store $store).Tags | Should -Be 'sweep'
    }

    It 'tags what each command creates: Start-GridRun the run, Invoke-GridExperiment and Import-GridArtifact the experiment' {
        $script = Join-Path $TestDrive 'noop.ps1'
        Set-Content $script 'Set-Content out.txt done'
        $run = Start-GridRun -FilePath $script -Name started -Tag nightly -Store $store -Wait -WorkingRoot (Join-Path $TestDrive 'work')
        $run.Tags | Should -Be 'nightly'
        $exp = Invoke-GridExperiment -Run started -Experiment exp1 -Tag extra -Store $store -WorkingDirectory (New-Source d) -- bash -c 'exit 0'
        $exp.Tags | Should -Be @('extra', 'nightly')
        (Get-GridExperiment started-exp1 -Store $store).Tags | Should -Be @('extra', 'nightly')
        (Get-GridExperiment started-exp0 -Store $store).Tags | Should -Be 'nightly'
        (Get-GridExperiment alpha-exp0 -Store $store).OwnTags | Should -Be 'sweep'
    }

    It 'refuses a bad tag before writing anything, an artifact on the pipeline, and an unknown run' {
        { Add-GridTag beta 'a:b' -Store $store } | Should -Throw -ErrorId 'InvalidTag,GridArtifacts.Commands.AddGridTagCommand'
        Import-GridArtifact -Path (New-Source e) -Run gamma -Tag 'no way' -Store $store -ErrorVariable bad -ErrorAction SilentlyContinue
        $bad[0].FullyQualifiedErrorId | Should -BeLike 'InvalidTag*'
        Get-GridRun gamma -Store $store -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        Get-GridArtifact beta -Store $store | Add-GridTag -Tag x -ErrorVariable err -ErrorAction SilentlyContinue
        $err[0].FullyQualifiedErrorId | Should -BeLike 'TagTargetInvalid*'
        Add-GridTag nobody x -Store $store -ErrorVariable err2 -ErrorAction SilentlyContinue
        $err2[0].FullyQualifiedErrorId | Should -BeLike 'RunNotFound*'
        (Get-GridRun beta -Store $store).Tags | Should -BeNullOrEmpty
    }

    It 'warns when an experiment''s tag is its run''s, and leaves it' {
        Add-GridTag alpha wide -Store $store
        Remove-GridTag alpha-exp1 wide -Store $store -WarningVariable w -WarningAction SilentlyContinue
        "$w" | Should -BeLike '*from its run*TagOnRun*'
        (Get-GridExperiment alpha-exp1 -Store $store).Tags | Should -Be 'wide'
        Remove-GridTag alpha-exp0 sweep -Store $store            # its own: it goes, and so from the run
        (Get-GridRun alpha -Store $store).Tags | Should -Be 'wide'
    }

    It 'goes with Copy-GridRun to another store' {
        $target = if ($Kind -eq 's3') { New-TestS3Store tagcopy } else { Join-Path $TestDrive "copy-$([guid]::NewGuid().ToString('N'))" }
        Add-GridTag alpha-exp1 best -Store $store
        Copy-GridRun alpha -Store $store -Destination $target | Out-Null
        (Get-GridRun alpha -Store $target).Tags | Should -Be @('best', 'sweep')
        (Get-GridExperiment alpha-exp1 -Store $target).OwnTags | Should -Be 'best'
    }

    It 'completes tags on Tab, and on Remove-GridTag those of the run typed' {
        Add-GridTag beta keep -Store $store
        $all = (TabExpansion2 "Get-GridRun -Store '$store' -Tag " -cursorColumn ("Get-GridRun -Store '$store' -Tag ".Length)).CompletionMatches.CompletionText
        $all | Should -Be @('keep', 'sweep')
        $line = "Remove-GridTag -Store '$store' -Run beta -Tag "
        (TabExpansion2 $line -cursorColumn $line.Length).CompletionMatches.CompletionText | Should -Be 'keep'
    }
}
