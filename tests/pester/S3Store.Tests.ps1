# The module against a real S3-compatible server (s3rver, started by build.ps1 on loopback).
BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    Assert-S3Server
    $script:ModulePath = Import-GridTestModule
    $env:GRID_CONFIG_HOME = Join-Path $TestDrive 'config'
    $script:Endpoint = $env:GRID_TEST_S3_ENDPOINT
    $script:Bucket = $env:GRID_TEST_S3_BUCKET
    $script:Prefix = 'pester-' + [guid]::NewGuid().ToString('N')
    $script:Store = "s3://$Bucket/$Prefix`?endpoint=$([uri]::EscapeDataString($Endpoint))"


    $script:Hashes = @{}
    $src = Join-Path $TestDrive 'src'
    $rnd = [Random]::new(42)
    foreach ($rel in 'metrics.csv', 'checkpoints/model.ckpt', 'naïve/résumé 日本.txt', 'empty.bin') {
        $file = Join-Path $src $rel
        New-Item -ItemType Directory -Force -Path (Split-Path $file) | Out-Null
        $len = if ($rel -eq 'empty.bin') { 0 } elseif ($rel -like '*.ckpt') { 5000000 } else { 2000 }
        $bytes = [byte[]]::new($len); $rnd.NextBytes($bytes)
        [IO.File]::WriteAllBytes($file, $bytes)
        $script:Hashes[$rel] = (Get-FileHash -LiteralPath $file -Algorithm SHA256).Hash.ToLowerInvariant()
    }
    Import-GridArtifact -Path $src -Run 's3-run' -Store $Store | Out-Null
    Import-GridArtifact -Path $src -Run 's3-run' -Experiment exp1 -Store $Store | Out-Null
}

AfterAll {
    Remove-Module GridArtifacts -ErrorAction Ignore
    Remove-Item Env:GRID_CONFIG_HOME -ErrorAction Ignore
}

Describe 'The S3 store' {
    It 'lists runs, experiments and artifacts' {
        (Get-GridRun -Store $Store).Name | Should -Be 's3-run'
        (Get-GridExperiment s3-run -Store $Store).Id | Should -Be @('s3-run-exp0', 's3-run-exp1')
        $artifacts = Get-GridArtifact s3-run-exp0 -Store $Store
        $artifacts.Path | Should -Be @('checkpoints/model.ckpt', 'empty.bin', 'metrics.csv', 'naïve/résumé 日本.txt')
        ($artifacts | Where-Object Path -eq 'checkpoints/model.ckpt').Size | Should -Be 5000000
    }

    It 'round-trips every artifact byte-exact through the pipeline' {
        $dest = Join-Path $TestDrive 'dest'
        $saved = Get-GridRun -Store $Store | Get-GridExperiment | Get-GridArtifact | Save-GridArtifact -Destination $dest -PassThru
        $saved.Count | Should -Be 8
        foreach ($exp in 'exp0', 'exp1') {
            foreach ($rel in $Hashes.Keys) {
                (Get-FileHash -LiteralPath (Join-Path $dest 's3-run' $exp $rel) -Algorithm SHA256).Hash.ToLowerInvariant() | Should -Be $Hashes[$rel]
            }
        }
    }

    It 'is chosen by $env:GRID_STORE and by Set-GridStore' {
        $env:GRID_STORE = $Store
        try {
            (Get-GridStore).Kind | Should -Be 'S3'
            (Get-GridRun).Name | Should -Be 's3-run'
        }
        finally { Remove-Item Env:GRID_STORE }
        Set-GridStore $Store
        try {
            (Get-GridStore).Source | Should -Be 'Config'
            (Get-GridArtifact s3-run-exp1 -Path metrics.csv).Sha256 | Should -Be $Hashes['metrics.csv']
        }
        finally { Set-GridStore -Default }
    }

    It 'follows AWS_ENDPOINT_URL_S3 with no other setting' {
        $out = Invoke-ChildPwsh "Import-Module '$ModulePath'; (Get-GridRun -Store 's3://$Bucket/$Prefix').Name" @{ AWS_ENDPOINT_URL_S3 = $Endpoint }
        $out | Should -Be 's3-run'
    }

    It 'reports a missing bucket as ObjectNotFound naming the store' {
        # A store that cannot be used ends the call: a terminating error.
        $err = @(try { Get-GridRun -Store "s3://no-such-bucket?endpoint=$([uri]::EscapeDataString($Endpoint))" } catch { $_ })
        $err[0].FullyQualifiedErrorId | Should -BeLike 'BucketNotFound,*'
        $err[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $err[0].Exception.Message | Should -BeLike '*s3://no-such-bucket*'
    }

    It 'reports an unreachable endpoint as a ConnectionError' {
        $err = @(try { Get-GridRun -Store "s3://b?endpoint=$([uri]::EscapeDataString('http://127.0.0.1:1'))" } catch { $_ })
        $err[0].FullyQualifiedErrorId | Should -BeLike 'EndpointUnreachable,*'
        $err[0].CategoryInfo.Category | Should -Be 'ConnectionError'
    }

    It 'says so when no credentials can be found' {
        $none = Join-Path $TestDrive 'no-such-aws-file'
        $out = Invoke-ChildPwsh "Import-Module '$ModulePath'; try { Get-GridRun -Store '$Store' } catch { `$_.FullyQualifiedErrorId; `$_.CategoryInfo.Category.ToString() }" @{
            AWS_ACCESS_KEY_ID = $null; AWS_SECRET_ACCESS_KEY = $null; AWS_SESSION_TOKEN = $null; AWS_PROFILE = $null
            AWS_SHARED_CREDENTIALS_FILE = $none; AWS_CONFIG_FILE = $none; AWS_EC2_METADATA_DISABLED = 'true'
            AWS_CONTAINER_CREDENTIALS_RELATIVE_URI = $null; AWS_CONTAINER_CREDENTIALS_FULL_URI = $null; AWS_WEB_IDENTITY_TOKEN_FILE = $null
        }
        $out[0] | Should -BeLike 'NoCredentials,*'
        $out[1] | Should -Be 'PermissionDenied'
    }

    It 'says how to set a region when none is set' {
        $none = Join-Path $TestDrive 'no-such-aws-file'
        $out = Invoke-ChildPwsh "Import-Module '$ModulePath'; try { Get-GridRun -Store 's3://$Bucket/$Prefix' } catch { `$_.FullyQualifiedErrorId; `$_.CategoryInfo.Category.ToString(); `$_.Exception.Message }" @{
            AWS_REGION = $null; AWS_DEFAULT_REGION = $null; AWS_PROFILE = $null; AWS_CONFIG_FILE = $none; AWS_SHARED_CREDENTIALS_FILE = $none
            AWS_EC2_METADATA_DISABLED = 'true'; AWS_ENDPOINT_URL = $null; AWS_ENDPOINT_URL_S3 = $null
        }
        $out[0] | Should -BeLike 'RegionNotSet,*'
        $out[1] | Should -Be 'InvalidArgument'
        $out[2] | Should -BeLike "*s3://$Bucket/$Prefix*no AWS region*"
        $out[2] | Should -BeLike '*AWS_REGION*'
        $out[2] | Should -BeLike "*s3://$Bucket/$Prefix`?region=*"
        $out[2] | Should -BeLike '*profile*'
        ($out -join "`n") | Should -Not -Match 'No RegionEndpoint'
    }

    It 'never prints the secret, even with -Verbose and -Debug' {
        $secret = 'Sup3rSecretValueThatMustNeverPrint0123456789'
        $out = Invoke-ChildPwsh "Import-Module '$ModulePath'; `$DebugPreference = 'Continue'; Get-GridRun -Store '$Store' -Verbose -Debug *>&1 | Out-String -Width 400; `$Error | Format-List * -Force | Out-String -Width 400" @{
            AWS_ACCESS_KEY_ID = 'AKIAUNKNOWNKEY000000'; AWS_SECRET_ACCESS_KEY = $secret
        }
        ($out -join "`n") | Should -Match 'InvalidCredentials'
        ($out -join "`n") | Should -Not -Match $secret
    }
}

Describe 'Dependency isolation' {
    It 'works beside another AWSSDK.Core version loaded <When> it' -ForEach @(
        @{ When = 'before'; Script = "Add-Type -Path `$env:GRID_TEST_OLD_AWSSDK_CORE; Import-Module '{0}'" }
        @{ When = 'after'; Script = "Import-Module '{0}'; `$null = Get-GridRun -Store '{1}'; Add-Type -Path `$env:GRID_TEST_OLD_AWSSDK_CORE" }
    ) {
        $command = ($Script -f $ModulePath, $Store) + @"
; `$old = [Amazon.Runtime.BasicAWSCredentials]::new('old-key', 'old-secret')
'old:' + `$old.GetType().Assembly.GetName().Version.Major + ':' + `$old.GetCredentials().AccessKey
'ours:' + ((Get-GridArtifact s3-run-exp0 -Store '$Store').Count)
'ctx:' + [System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext(`$old.GetType().Assembly).Name
"@
        $out = Invoke-ChildPwsh $command
        $out | Should -Contain 'old:3:old-key'
        $out | Should -Contain 'ours:4'
        $out | Should -Contain 'ctx:Default'
    }
}
