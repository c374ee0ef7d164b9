# For ClusterRecipes.Tests.ps1 (dot-sourced in its BeforeAll): reading the manifests, running the
# container's command as pods would, and what every recipe must do with it. Uses the test file's
# $TestDrive, $Examples and $AgentFolder.

# One scalar of the manifest, by key; the manifest must have it once.
function Get-YamlScalar([string] $Yaml, [string] $Key) {
    $found = [regex]::Matches($Yaml, "(?m)^[ \t]*$([regex]::Escape($Key)):[ \t]*(?<v>[^#\r\n]*?)[ \t]*(#.*)?\r?$")
    $found.Count | Should -Be 1 -Because "the manifest has '$($Key):' once"
    $found[0].Groups['v'].Value.Trim('"', "'")
}

# The env entries with a literal value (`- name: X` then `value: Y`), as a hashtable.
function Get-YamlEnv([string] $Yaml) {
    $env = @{}
    foreach ($m in [regex]::Matches($Yaml, "(?m)^[ \t]*- name:[ \t]*(?<n>\S+)[ \t]*(#.*)?\r?\n[ \t]*value:[ \t]*(?<v>[^#\r\n]*?)[ \t]*(#.*)?\r?$")) {
        $env[$m.Groups['n'].Value] = $m.Groups['v'].Value.Trim('"', "'")
    }
    $env
}

# The literal block scalar (`- |`) under the container's `args:`: the script /bin/sh -c runs.
function Get-YamlArgsScript([string] $Yaml) {
    $lines = $Yaml -split '\r?\n'
    $at = @(for ($n = 0; $n -lt $lines.Count; $n++) { if ($lines[$n] -match '^\s*args:\s*$') { $n } })
    $at.Count | Should -Be 1 -Because 'the manifest has one args: list'
    $lines[$at[0] + 1] | Should -Match '^\s*- \|\s*$' -Because 'args: holds the script as one literal block (- |)'
    $dash = $lines[$at[0] + 1].IndexOf('-')
    $body = [Collections.Generic.List[string]]::new()
    for ($n = $at[0] + 2; $n -lt $lines.Count; $n++) {
        $line = $lines[$n]
        if ($line.Trim() -and ($line.Length - $line.TrimStart().Length) -le $dash) { break }
        $body.Add($line)
    }
    while ($body.Count -and -not $body[$body.Count - 1].Trim()) { $body.RemoveAt($body.Count - 1) }
    $indent = ($body | Where-Object { $_.Trim() } | Select-Object -First 1) -replace '^(\s*).*$', '$1'
    (($body | ForEach-Object { if ($_.StartsWith($indent)) { $_.Substring($indent.Length) } else { $_.Trim() } }) -join "`n") + "`n"
}

# What the pod's sh script does with its index: the list it picks from (`set -- a b c`, then
# `shift "$i"`) and the grid-agent command it execs. What it does when run is asserted by running it.
function Read-PodScript([string] $Script, [string] $IndexVariable) {
    $statements = @($Script -split '[;\n]' | ForEach-Object Trim | Where-Object { $_ })
    $statements[0] | Should -Be 'set -eu' -Because 'an index with no value or a variable not set must fail the pod before anything runs'
    $statements | Should -Contain "i=`$$IndexVariable"
    $set = @($statements | Where-Object { $_ -match '^set -- ' })
    $set.Count | Should -Be 1 -Because 'the script lists its values once, with set --'
    $statements | Should -Contain 'shift "$i"'
    $exec = $statements[-1]
    $exec | Should -Match '^exec grid-agent run ' -Because 'grid-agent must be the container''s main process, so SIGTERM reaches it and its exit status is the container''s'
    foreach ($option in '--run "$GRID_RUN_NAME"', '--experiment "exp$i"', '--store "$GRID_STORE"', '--param lr="$lr"') {
        $exec | Should -Match ([regex]::Escape(" $option ")) -Because "the command passes $option"
    }
    $exec | Should -Not -Match '--queued' -Because 'nothing queues the experiments beforehand: the first pod creates the run'
    [pscustomobject]@{ Script = $Script; Values = @($set[0] -split '\s+' | Select-Object -Skip 2) }
}

# Starts the container's command (argv, /bin/sh first) once per index, all at once, each process
# in a folder of its own holding train.py (examples/hello.py unless -Train gives another), with
# grid-agent on PATH. -Prefix goes before the command (unshare, to make it a namespace's PID 1).
function Invoke-Pods([string[]] $Argv, [string] $IndexVariable, [int[]] $Indexes, [hashtable] $Environment, [string] $Name,
    [string] $Train = (Get-Content -Raw (Join-Path $Examples 'hello.py')), [string[]] $Prefix = @()) {
    $Argv[0] | Should -Be '/bin/sh'
    $all = @($Prefix | Where-Object { $_ }) + $Argv
    foreach ($i in $Indexes) {
        $folder = Join-Path $TestDrive "$Name/pod$i"
        New-Item -ItemType Directory -Force -Path $folder | Out-Null
        Set-Content -LiteralPath (Join-Path $folder 'train.py') -Value $Train -NoNewline
        $psi = [Diagnostics.ProcessStartInfo]::new($all[0])
        foreach ($a in $all[1..($all.Count - 1)]) { $psi.ArgumentList.Add($a) }
        $psi.WorkingDirectory = $folder
        $psi.UseShellExecute = $false
        $psi.RedirectStandardOutput = $true
        $psi.RedirectStandardError = $true
        foreach ($k in $Environment.Keys) { $psi.Environment[$k] = $Environment[$k] }
        $psi.Environment[$IndexVariable] = "$i"
        $psi.Environment['PATH'] = $AgentFolder + [IO.Path]::PathSeparator + $env:PATH
        $p = [Diagnostics.Process]::Start($psi)
        [pscustomobject]@{ Index = $i; Folder = $folder; Process = $p; Out = $p.StandardOutput.ReadToEndAsync(); Err = $p.StandardError.ReadToEndAsync() }
    }
}

# Waits for each pod's command to end and adds its exit code and output.
function Wait-Pods([Parameter(ValueFromPipeline)] $Pod) {
    process {
        if (-not $Pod.Process.WaitForExit(90000)) { $Pod.Process.Kill($true); throw "pod $($Pod.Index) did not end in 90 s" }
        $Pod.Process.WaitForExit()
        $Pod | Add-Member ExitCode $Pod.Process.ExitCode
        $Pod | Add-Member Output ($Pod.Out.Result + $Pod.Err.Result)
        $Pod.Process.Dispose()
        $Pod
    }
}

# Every file of a folder store with its hash, to show that something changed nothing.
function Get-StoreSnapshot([string] $Store) {
    @(Get-ChildItem -LiteralPath $Store -Recurse -File -Force | ForEach-Object {
            "$([IO.Path]::GetRelativePath($Store, $_.FullName)) $((Get-FileHash -Algorithm SHA256 -LiteralPath $_.FullName).Hash)" } | Sort-Object)
}

# What the pod's train.py wrote (every file of its folder but train.py) is the experiment's
# artifacts, and downloads byte for byte.
function Assert-PodArtifacts($Pod, [string] $Store, $Experiment) {
    $local = @(Get-ChildItem -LiteralPath $Pod.Folder -Recurse -File | Where-Object Name -ne 'train.py' |
        ForEach-Object { [IO.Path]::GetRelativePath($Pod.Folder, $_.FullName).Replace('\', '/') } | Sort-Object)
    $local.Count | Should -BeGreaterThan 3
    (Get-GridArtifact $Experiment.Id -Store $Store).Path | Sort-Object | Should -Be $local
    $dest = Join-Path $TestDrive "saved/$([guid]::NewGuid().ToString('N'))"
    Save-GridArtifact $Experiment.Id -Store $Store -Destination $dest
    $saved = Join-Path $dest "$($Experiment.Run)/$($Experiment.Experiment)"
    foreach ($path in $local) {
        (Get-FileHash -Algorithm SHA256 -LiteralPath (Join-Path $saved $path)).Hash |
            Should -Be (Get-FileHash -Algorithm SHA256 -LiteralPath (Join-Path $Pod.Folder $path)).Hash -Because $path
    }
}

# One run, exp0..exp(N-1), each Succeeded with its own value, every pod's command exited 0, and
# what each pod's train.py wrote downloaded byte for byte.
function Assert-Sweep($Pods, [string] $Store, [string] $Run, [object[]] $Values) {
    foreach ($pod in $Pods) { $pod.ExitCode | Should -Be 0 -Because "pod $($pod.Index) said: $($pod.Output)" }
    @(Get-GridRun -Store $Store).Name | Should -Be @($Run)
    $experiments = @(Get-GridExperiment $Run -Store $Store)
    $experiments.Experiment | Should -Be @(0..($Values.Count - 1) | ForEach-Object { "exp$_" })
    foreach ($pod in $Pods) {
        $e = $experiments[$pod.Index]
        $value = [string]$Values[$pod.Index]
        $e.Status | Should -Be 'Succeeded'
        $e.ExitCode | Should -Be 0
        $e.Parameters['lr'] | Should -Be $value
        Get-Content -Raw (Join-Path $pod.Folder 'logs/train.log') | Should -Match "lr=$([regex]::Escape($value)) "
        Assert-PodArtifacts $pod $Store $e
    }
}

# A second pod of an index whose experiment has ended: grid-agent refuses it (125), its train.py
# never runs, and the store is as it was, byte for byte.
function Assert-RetryRefused([string[]] $Argv, [string] $IndexVariable, [int] $Index, [hashtable] $Environment, [string] $Store, [string] $Run, [string] $Name) {
    $before = Get-StoreSnapshot $Store
    $retry = Invoke-Pods $Argv $IndexVariable $Index $Environment $Name | Wait-Pods
    $retry.ExitCode | Should -Be 125 -Because "grid-agent exits 125 when the command did not run; it said: $($retry.Output)"
    $retry.Output | Should -Match "ExperimentExists: $([regex]::Escape("$Run-exp$Index")) .*has ended \(Succeeded\)"
    @(Get-ChildItem -LiteralPath $retry.Folder -Recurse -Force).Name | Should -Be @('train.py') -Because 'the training script never ran'
    Get-StoreSnapshot $Store | Should -Be $before
    (Get-GridExperiment "$Run-exp$Index" -Store $Store).Status | Should -Be 'Succeeded'
}

# A pod whose index is past the end of the list (a Job with more completions than values): the
# shell fails it (set -eu) before grid-agent starts, so nothing reaches the store.
function Assert-IndexOutOfRange([string[]] $Argv, [string] $IndexVariable, [int] $Index, [hashtable] $Environment, [string] $Name) {
    $environment = @{} + $Environment
    $environment['GRID_STORE'] = $store = Join-Path $TestDrive "store-$Name"
    $pod = Invoke-Pods $Argv $IndexVariable $Index $environment $Name | Wait-Pods
    $pod.ExitCode | Should -Not -Be 0 -Because "index $Index has no value; the pod said: $($pod.Output)"
    $pod.Output | Should -Not -Match 'grid-agent' -Because 'the shell ends before grid-agent starts'
    @(Get-ChildItem -LiteralPath $pod.Folder -Recurse -Force).Name | Should -Be @('train.py')
    Test-Path -LiteralPath $store | Should -BeFalse -Because 'nothing was written to the store'
}

# Why a PID namespace cannot be made here (unshare needs root), or nothing when it can.
function Test-PidNamespace {
    $unshare = Get-Command unshare -CommandType Application -ErrorAction Ignore | Select-Object -First 1
    if (-not $unshare) { return 'unshare is not on PATH, so no PID namespace can be made here' }
    $said = & $unshare.Source --pid --fork --kill-child /bin/true 2>&1
    if ($LASTEXITCODE -ne 0) { return "unshare cannot make a PID namespace here: $said" }
}

# One pod of a fresh store whose train.py is still running (hello.py, then a long sleep, as a
# training does) gets SIGTERM, as the runtime sends it to the container's main process. Its
# command must be grid-agent itself (exec), which ends the experiment Failed with Signal SIGTERM,
# every file train.py wrote stored byte for byte and still in the pod's folder. -AsPid1 runs the
# command as PID 1 of a PID namespace of its own (as in a container) and signals it from outside,
# as the runtime does: the kernel delivers that only to a PID 1 with a handler for it.
function Assert-Sigterm([string[]] $Argv, [string] $IndexVariable, [int] $Index, [hashtable] $Environment, [object[]] $Values, [string] $Name, [switch] $AsPid1) {
    $environment = @{} + $Environment
    $environment['GRID_STORE'] = $store = Join-Path $TestDrive "store-$Name"
    $train = (Get-Content -Raw (Join-Path $Examples 'hello.py')) + "`nprint('training on', flush=True)`ntime.sleep(600)`n"
    $prefix = if ($AsPid1) { @((Get-Command unshare -CommandType Application)[0].Source, '--pid', '--fork', '--kill-child') } else { @() }
    $pod = Invoke-Pods $Argv $IndexVariable $Index $environment $Name -Train $train -Prefix $prefix
    $process = $pod.Process
    try {
        # The process to signal: the pod's own (sh, which exec made grid-agent), or unshare's child.
        $deadline = [DateTime]::UtcNow.AddSeconds(60)
        do {
            Start-Sleep -Milliseconds 200
            $agentPid = if ($AsPid1) { (Get-Content -ErrorAction Ignore "/proc/$($pod.Process.Id)/task/$($pod.Process.Id)/children") -split ' ' | Where-Object { $_ } | Select-Object -First 1 } else { $pod.Process.Id }
            $ready = $agentPid -and (Get-Content -ErrorAction Ignore "/proc/$agentPid/comm") -eq 'grid-agent' -and
                (Test-Path (Join-Path $pod.Folder 'plots/loss/curve.svg'))
        } until ($ready -or $pod.Process.HasExited -or [DateTime]::UtcNow -gt $deadline)
        $ready | Should -BeTrue -Because 'the pod''s command runs as grid-agent (exec) and train.py wrote its files'
        if ($AsPid1) { (Get-Content "/proc/$agentPid/status" | Where-Object { $_ -like 'NSpid:*' }) -split '\s+' | Select-Object -Last 1 | Should -Be '1' }
        & (Get-Command kill -CommandType Application)[0].Source -s TERM $agentPid
        $pod = $pod | Wait-Pods
    } finally { if (-not $pod.PSObject.Properties['ExitCode']) { $process.Kill($true); $process.Dispose() } }
    $pod.ExitCode | Should -Be 143 -Because "train.py was ended by SIGTERM (128+15); the pod said: $($pod.Output)"
    $e = Get-GridExperiment "$($environment['GRID_RUN_NAME'])-exp$Index" -Store $store
    $e.Status | Should -Be 'Failed'
    $e.Signal | Should -Be 'SIGTERM'
    $e.ExitCode | Should -Be 143
    $e.Parameters['lr'] | Should -Be ([string]$Values[$Index])
    Assert-PodArtifacts $pod $store $e
}
