# The .nupkg that build.ps1 -Task Package makes (the Test task makes it too), installed as users
# would: from a PSResourceGet repository, then imported by name in a fresh pwsh.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:ModulePath = Import-GridTestModule
    $script:Packages = Join-Path (Split-Path $ModulePath -Parent) 'packages'
    $script:Version = (Import-PowerShellDataFile (Join-Path $ModulePath 'GridArtifacts.psd1')).ModuleVersion
    $script:Repository = 'GridArtifactsTest-' + [guid]::NewGuid().ToString('N').Substring(0, 8)
    Register-PSResourceRepository -Name $Repository -Uri $Packages -Trusted
}

AfterAll {
    Unregister-PSResourceRepository -Name $Repository -ErrorAction Ignore
    Remove-Module GridArtifacts -ErrorAction Ignore
}

Describe 'The package' {
    It 'is in out/packages with the module''s version' {
        Join-Path $Packages "GridArtifacts.$Version.nupkg" | Should -Exist
    }

    It 'installs from a local repository and imports by name in a fresh session' {
        $modules = Join-Path $TestDrive 'modules'
        New-Item -ItemType Directory -Path $modules | Out-Null
        Save-PSResource -Name GridArtifacts -Repository $Repository -Path $modules -TrustRepository
        Join-Path $modules "GridArtifacts/$Version/GridArtifacts.psd1" | Should -Exist

        $src = Join-Path $TestDrive 'src'
        New-Item -ItemType Directory -Path $src | Out-Null
        Set-Content -Path (Join-Path $src 'metrics.csv') -Value 'epoch,loss'
        $store = Join-Path $TestDrive 'store'
        $out = Invoke-ChildPwsh -Environment @{ PSModulePath = $modules; GRID_STORE = $store; GRID_CONFIG_HOME = (Join-Path $TestDrive 'config') } -Command @"
`$ErrorActionPreference = 'Stop'
Import-Module GridArtifacts
`$m = Get-Module GridArtifacts
"base=`$(`$m.ModuleBase)"
"version=`$(`$m.Version)"
"store=`$((Get-GridStore).Source)"
Import-GridArtifact '$src' -Run package-run | Out-Null
"runs=`$((Get-GridRun).Name -join ',')"
"artifacts=`$((Get-GridArtifact package-run).Path -join ',')"
"help=`$((Get-Help Get-GridRun).Synopsis)"
# The package is a zip, which keeps no file modes: the module makes its grid-agent runnable again.
`$run = Start-GridRun -Command 'echo packaged > out.txt' -Name package-sweep -Wait -Verbose 4>&1 | ForEach-Object { if (`$_ -is [System.Management.Automation.VerboseRecord]) { "verbose=`$(`$_.Message)" } else { "sweep=`$(`$_.Status)" } }
`$run
"@
        $text = $out -join "`n"
        $text | Should -Match ([regex]::Escape("base=$(Join-Path $modules "GridArtifacts/$Version")"))
        $text | Should -Match "version=$([regex]::Escape($Version))"
        $text | Should -Match 'store=Environment'
        $text | Should -Match 'runs=package-run(\n|$)'
        $text | Should -Match 'artifacts=metrics.csv(\n|$)'
        $text | Should -Match 'help=Lists runs, newest first\.'
        if ($IsLinux -and [Runtime.InteropServices.RuntimeInformation]::OSArchitecture -eq 'X64') {
            $text | Should -Match ([regex]::Escape("verbose=The experiments run under $(Join-Path $modules "GridArtifacts/$Version/agent/linux-x64/grid-agent")."))
        }
        $text | Should -Match 'sweep=Succeeded'
    }

    It 'has grid-agent alone as a tarball: one runnable file of this version' -Skip:(-not ($IsLinux -and [Runtime.InteropServices.RuntimeInformation]::OSArchitecture -eq 'X64')) {
        $tarball = Join-Path $Packages "grid-agent-$Version-linux-x64.tar.gz"
        $tarball | Should -Exist
        $listing = @(tar -tvzf $tarball)
        $listing.Count | Should -Be 1
        $listing[0] | Should -Match '^-rwxr-xr-x .* grid-agent$'
        $unpacked = Join-Path $TestDrive 'agent'
        New-Item -ItemType Directory -Path $unpacked | Out-Null
        tar -xzf $tarball -C $unpacked
        & (Join-Path $unpacked 'grid-agent') --version | Should -Be "grid-agent $Version"
    }
}
