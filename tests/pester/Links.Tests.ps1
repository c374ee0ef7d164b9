# Expiring links as users meet them, on both stores.
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Assert-S3Server
    $script:ModulePath = Import-GridTestModule
    $env:GRID_CONFIG_HOME = Join-Path $TestDrive 'config'
    $script:Local = Join-Path $TestDrive 'store'
    $script:S3 = (New-TestS3Store links)
    $src = Join-Path $TestDrive 'src'
    New-Item -ItemType Directory -Force -Path "$src/ckpt" | Out-Null
    $script:Bytes = [byte[]]::new(300000); [Random]::new(5).NextBytes($script:Bytes)
    [IO.File]::WriteAllBytes("$src/ckpt/model weights.pt", $script:Bytes)
    $script:Sha = [Convert]::ToHexString([Security.Cryptography.SHA256]::HashData($script:Bytes))
    foreach ($store in $Local, $S3) { Import-GridArtifact -Path $src -Run link-run -Store $store | Out-Null }
    $script:Server = Start-GridArtifactServer -Store $Local

    function Get-Status([uri] $Url, [hashtable] $Headers = @{}) {
        try { (Invoke-WebRequest -Uri $Url -Headers $Headers -SkipHttpErrorCheck).StatusCode } catch { -1 }
    }
    function Get-Sha([uri] $Url) {
        $r = Invoke-WebRequest -Uri $Url
        $r.StatusCode | Should -Be 200
        [Convert]::ToHexString([Security.Cryptography.SHA256]::HashData($r.RawContentStream.ToArray()))
    }
}

AfterAll {
    Stop-GridArtifactServer -Store $Local -ErrorAction Ignore
    Remove-Module GridArtifacts -ErrorAction Ignore
    Remove-Item Env:GRID_CONFIG_HOME -ErrorAction Ignore
}

Describe 'New-GridArtifactLink' {
    It 'expires after 24 hours by default, and a second ask gives a fresh link (<Kind>)' -ForEach @(@{ Kind = 'local' }, @{ Kind = 's3' }) {
        $store = if ($Kind -eq 'local') { $Local } else { $S3 }
        $a = Get-GridArtifact link-run -Store $store
        $first = $a | New-GridArtifactLink
        $first.ExpiresAt | Should -BeGreaterThan ([DateTimeOffset]::UtcNow.AddHours(23.9))
        $first.ExpiresAt | Should -BeLessOrEqual ([DateTimeOffset]::UtcNow.AddHours(24).AddSeconds(1))
        $first.Path | Should -Be 'ckpt/model weights.pt'
        Start-Sleep -Milliseconds 1100
        ($a | New-GridArtifactLink).Url | Should -Not -Be $first.Url
    }

    It 'downloads the exact bytes before expiry and gets 403 after (<Kind>)' -ForEach @(@{ Kind = 'local' }, @{ Kind = 's3' }) {
        $store = if ($Kind -eq 'local') { $Local } else { $S3 }
        $link = New-GridArtifactLink link-run -Store $store -Expiry ([TimeSpan]::FromSeconds(3))
        Get-Sha $link.Url | Should -Be $Sha
        Start-Sleep -Seconds 5
        Get-Status $link.Url | Should -Be 403
    }

    It 'writes the signature only as the link asked for, never in verbose output (<Kind>)' -ForEach @(@{ Kind = 'local' }, @{ Kind = 's3' }) {
        $store = if ($Kind -eq 'local') { $Local } else { $S3 }
        $all = New-GridArtifactLink link-run -Store $store -Verbose 4>&1
        $link = $all | Where-Object { $_ -is [GridArtifacts.Model.GridArtifactLink] }
        $sig = [regex]::Match($link.Url.AbsoluteUri, '(?:s|X-Amz-Signature)=([0-9a-f]{64})').Groups[1].Value
        $sig | Should -Match '^[0-9a-f]{64}$'
        $verbose = ($all | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }).Message -join "`n"
        $verbose | Should -Not -BeNullOrEmpty
        $verbose | Should -Not -Match $sig
    }

    It 'refuses links beyond seven days, on either store, before signing (<Kind>)' -ForEach @(@{ Kind = 'local' }, @{ Kind = 's3' }) {
        $store = if ($Kind -eq 'local') { $Local } else { $S3 }
        { New-GridArtifactLink link-run -Store $store -Expiry ([TimeSpan]::FromDays(8)) -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidExpiry*'
        (New-GridArtifactLink link-run -Store $store -Expiry ([TimeSpan]::FromDays(7))).ExpiresAt | Should -BeGreaterThan ([DateTimeOffset]::UtcNow.AddDays(6.99))
    }

    It 'serves ranges of a local link' {
        $link = New-GridArtifactLink link-run -Store $Local
        $r = Invoke-WebRequest -Uri $link.Url -Headers @{ Range = 'bytes=1000-1999' }
        $r.StatusCode | Should -Be 206
        $r.RawContentStream.ToArray() | Should -Be $Bytes[1000..1999]
        $r.Headers['Content-Range'] | Should -Be 'bytes 1000-1999/300000'
    }

    It 'gives 403 and no data to altered, foreign and traversing local links' {
        $link = (New-GridArtifactLink link-run -Store $Local).Url.AbsoluteUri
        $link | Should -Match 'ckpt%2Fmodel%20weights\.pt'
        Get-Status $link | Should -Be 200
        $sig = [regex]::Match($link, 's=([0-9a-f]{64})').Groups[1].Value
        $flipped = $sig.Substring(0, 63) + $(if ($sig[63] -eq '0') { '1' } else { '0' })
        Get-Status ($link -replace $sig, $flipped) | Should -Be 403
        Get-Status ($link -replace 'model%20weights\.pt', 'other.pt') | Should -Be 403
        Get-Status ($link -replace 'ckpt%2Fmodel%20weights\.pt', '..%2F..%2F..%2Fetc%2Fpasswd') | Should -Be 403
        Get-Status ($link -replace '/a/link-run/', '/a/other-run/') | Should -Be 403
        Get-Status ($link -replace 'e=(\d+)', 'e=9999999999') | Should -Be 403
        Get-Status ("$($Server.Url)a/link-run/exp0/.link-secret?e=9999999999&s=$sig") | Should -Be 403
    }

    It 'keeps the per-store secret readable only by its owner' -Skip:$IsWindows {
        [IO.File]::GetUnixFileMode((Join-Path $Local '.link-secret')) | Should -Be ([IO.UnixFileMode]'UserRead, UserWrite')
    }

    It 'says what to do when no server serves a local store' {
        $other = Join-Path $TestDrive 'other-store'
        Import-GridArtifact -Path (Join-Path $TestDrive 'src') -Run other-run -Store $other | Out-Null
        New-GridArtifactLink other-run -Store $other -ErrorVariable err -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -BeLike 'NoLinkServer,*'
    }
}

Describe 'Stop-GridArtifactServer without -Store' {
    BeforeAll {
        Stop-GridArtifactServer -Store $Local
        $script:Others = foreach ($n in 'only-a', 'only-b') {
            $store = Join-Path $TestDrive $n
            Import-GridArtifact -Path (Join-Path $TestDrive 'src') -Run "$n-run" -Store $store | Out-Null
            $store
        }
        $script:SavedStore = $env:GRID_STORE
        $env:GRID_STORE = Join-Path $TestDrive 'store-in-effect'   # has no server
    }
    AfterAll {
        if ($null -eq $SavedStore) { Remove-Item Env:GRID_STORE -ErrorAction Ignore } else { $env:GRID_STORE = $SavedStore }
        foreach ($s in $Others) { Stop-GridArtifactServer -Store $s -ErrorAction Ignore }
    }

    It 'stops the one server that runs, for whichever store' {
        $one = Start-GridArtifactServer -Store $Others[0]
        Get-Status "$($one.Url)" | Should -Not -Be -1
        Stop-GridArtifactServer -ErrorVariable err
        $err | Should -BeNullOrEmpty
        Get-Status "$($one.Url)" | Should -Be -1
    }

    It 'stops none when several run and none is for the store in effect, and names them' {
        $servers = foreach ($s in $Others) { Start-GridArtifactServer -Store $s }
        Stop-GridArtifactServer -ErrorVariable err -ErrorAction SilentlyContinue
        $err[0].FullyQualifiedErrorId | Should -Be 'AmbiguousLinkServer,GridArtifacts.Commands.StopGridArtifactServerCommand'
        foreach ($s in $Others) { $err[0].Exception.Message | Should -Match ([regex]::Escape($s)) }
        foreach ($s in $servers) { Get-Status "$($s.Url)" | Should -Not -Be -1 }
    }
}
