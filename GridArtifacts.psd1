#
# Module manifest for GridArtifacts.
# ModuleVersion is stamped by build.ps1 from Directory.Build.props, where the version is defined once.
#
@{
    RootModule           = 'GridArtifacts.dll'
    ModuleVersion        = '0.0.0'
    GUID                 = '5f0b6a3e-2c1d-4a8e-9b7f-6d3c2e1a0f94'
    Author               = 'GridArtifacts contributors'
    CompanyName          = 'GridArtifacts'
    Copyright            = '(c) GridArtifacts contributors. MIT License.'
    Description          = 'Captures every file a training run writes, keeps it in long-term storage (a local folder or an S3 bucket), and lets you list, download, share and delete those artifacts from PowerShell.'
    PowerShellVersion    = '7.4'
    CompatiblePSEditions = @('Core')
    NestedModules        = @('GridArtifacts.Grid.psm1')
    FormatsToProcess     = @('GridArtifacts.Format.ps1xml')
    CmdletsToExport      = @(
        'Get-GridStore'
        'Protect-GridRun'
        'Add-GridTag'
        'Remove-GridTag'
        'Unprotect-GridRun'
        'Remove-GridWorkingDirectory'
        'Set-GridStore'
        'Get-GridRun'
        'Get-GridExperiment'
        'Get-GridArtifact'
        'Save-GridArtifact'
        'Import-GridArtifact'
        'Get-GridTransferOption'
        'Set-GridTransferOption'
        'Start-GridRun'
        'Stop-GridRun'
        'Invoke-GridExperiment'
        'Get-GridLog'
        'Remove-GridRun'
        'Remove-GridExperiment'
        'New-GridArtifactLink'
        'Start-GridArtifactServer'
        'Stop-GridArtifactServer'
        'Show-GridArtifact'
        'Copy-GridRun'
        'Compare-GridExperiment'
        'Measure-GridStore'
    )
    FunctionsToExport    = @('grid')
    AliasesToExport      = @()
    VariablesToExport    = @()
    PrivateData          = @{
        PSData = @{
            Tags         = @('ML', 'MachineLearning', 'Artifacts', 'S3', 'Storage', 'Training', 'Experiments')
            LicenseUri   = 'https://opensource.org/licenses/MIT'
            ProjectUri   = 'https://example.invalid/GridArtifacts'
            ReleaseNotes = '0.4.5: a slow upload no longer holds back the manifest. While a pass of the capture agent uploads, the entries of the files that went up go to the store on the journal''s cadence (a second, longer as the manifest grows), so a large checkpoint or a store that answers late leaves the other files listed by Get-GridArtifact meanwhile; an outage still piles entries into one segment. The agent is in parts (docs/capture.md): the script, the folders, the uploads and the manifest. Schema stays 2. 0.4.4: transfers on a real S3. PUTs of artifacts (whole objects and parts) are signed by the store and sent on its HTTP client, as its GETs are since 0.4.3: a body of up to 1 MiB is read once into a pooled buffer, hashed and sent from it, its SHA-256 signed, so a server that checks it (AWS, Ceph''s RADOS Gateway) refuses a body that is not the bytes hashed; Import-GridArtifact of 2,000 small files to RGW takes 30% less time and half the CPU; GRID_S3_SDK_PUTS=1 keeps the SDK. The store''s own requests fail as the SDK''s do: a time-out is transient, a body refused as changed is BodyChanged (tried again, read afresh), no redirect is followed, and a store that cannot sign keeps the SDK. bench/Transfer.Bench.ps1 measures on RGW as well as s3rver. Schema stays 2. 0.4.3: a real S3 under the tests. The S3 suites (store contract, one writer, faults, reliability, Unicode names, direct GETs, the S3 store and one-writer Pester tests, a Slurm sweep) also run on Ceph''s RADOS Gateway, which the test task starts (tests/s3/Start-Rgw.sh), as well as on s3rver. S3 GETs of artifacts are signed by the store and sent on its HTTP client rather than through the SDK''s pipeline (about 0.6 ms of CPU less a request; Save-GridArtifact of 2,000 small files from RGW 25% faster), with the address, region and credentials the SDK gives and the same typed errors; GRID_S3_SDK_GETS=1 keeps the SDK. A server that keeps throttling (503 SlowDown, 429) is given up to 10 attempts, other transient failures 5. Schema stays 2. 0.4.2: what a new user meets. Start-GridRun runs each experiment in a new, empty folder (<WorkingRoot>/<run>.<random>/<expN>) that no earlier run used, removed after a final sync that stored every file in it; kept with -KeepWorkingDirectory or when a file did not reach the store, with a warning naming it (GridExperiment.WorkingDirectory); Remove-GridWorkingDirectory removes the folders of ended runs, and those earlier releases left in <WorkingRoot>/<run>, which Start-GridRun reports; Invoke-GridExperiment -RemoveWorkingDirectory. Every default table fits 80 columns and shows more at 120; Get-GridExperiment shows the parameters that vary and the key metrics (val_loss first, -Metric picks); a link is a list. Start-GridRun -Wait writes one ExperimentFailed error per experiment that failed or was lost; unknown parameters of a .ps1 script are refused (UnknownScriptParameter) before anything starts. An S3 address without a region is RegionNotSet, saying how to set one; Set-GridStore tries an S3 store before saving it (-Force saves anyway); Get-GridRun names an experiment id as one; Save-GridArtifact checks its destination once (a file in the way, not writable, too little space) and stops at the first full-disk error; Remove-GridRun and Remove-GridExperiment in a session that cannot ask say -Confirm:$false (ConfirmationNotPossible). The page reads at 900 px, follows its address (hash, Back), labels chart lines with the parameters that vary, uses round ticks, and writes KiB and MiB. Schema stays 2. 0.4.1: hostile folders and destinations. Capture and Import-GridArtifact read nothing outside their roots: a link out (to a secret, to the store or its link secret) is skipped with a warning naming its target, a link inside arrives as its target, folder links are never walked and no folder twice (device and inode, so a bind mount of the store or of a folder into itself is known), FIFOs, sockets and devices are never opened, and a file is read only as far as its length when opened. Save-GridArtifact writes its temporary files in <dest>/.grid-partial, created exclusively, follows no link below the destination and saves names of up to 255 bytes. Links live at most 7 days on both stores (InvalidExpiry), and the folder store server refuses longer ones; Show-GridArtifact opens the browser on a private entry file with a one-time code, never the token. Records are read with a 4 MiB bound (DamagedRecord, the rest listed) and manifests as streams; a file whose size differs from its sealed manifest is HashMismatch; keys too long for the store are refused by name before upload. Schema stays 2. 0.4.0: sweeps on a cluster. Start-GridRun -Scheduler Slurm queues the sweep in the store and submits one sbatch array job (%ThrottleLimit; -SchedulerArgument passes sbatch options); task i runs expI under Invoke-GridExperiment; the job is on the run (GridRun.Scheduler, JobId, Cluster; one index key). The agent takes SIGTERM and SIGINT as a stop: final sync, sealed manifest and status within GRID_SIGNAL_GRACE (KillWait on Slurm), Failed with Signal SIGTERM, or Stopped. Stop-GridRun and Remove-GridRun -Force cancel queued tasks (scancel) and end their experiments Stopped, and stop running ones through their agents; Get-GridRun, Get-GridExperiment and Start-GridRun -Wait end queued experiments whose tasks ended before their agents started (Reason). The page shows the job of a cluster run and how each experiment ended (signal, exit code, or the reason its scheduler gave). docs/clusters.md, with Kubernetes Indexed Job and AWS Batch recipes in examples/. Schema stays 2: 0.3.0 reads a 0.4.0 store, without the job. 0.3.0: organize and clean up. Tags (Add-GridTag, Remove-GridTag, -Tag on Start-GridRun, Invoke-GridExperiment and Import-GridArtifact; Get-GridRun -Tag and Get-GridExperiment -Tag with wildcards), one small index key per tag, listed with the runs; Protect-GridRun and Unprotect-GridRun; metrics read from metrics.json or the newest metrics.csv (PyTorch Lightning) as the agent syncs and at the seal, and by Import-GridArtifact (GridExperiment.Metrics); Compare-GridExperiment (artifacts by SHA-256, parameters, metrics, with side indicators); retention: Remove-GridRun -OlderThan -KeepLatest -ExcludeTag and Remove-GridExperiment -KeepBest -By, -WhatIf with the bytes freed, -PassThru GridRemoval; Measure-GridStore; the page shows tags, protection, parameters and metrics as sortable columns and charts metrics.csv; examples/retention.ps1. Schema stays 2: 0.2.0 reads a 0.3.0 store, without tags, protection or metrics (upgrade every machine that runs clean-ups). 0.2.0: store schema 2. Get-GridRun and the page list every run from one listing (index keys beside the run folders), fresh from any writer; manifests are written as segments and sealed at the end; the capture agent keeps about 90 bytes a file and rescans only what change notifications name (with a full rescan at least 30 s apart). Stores written by 0.1.0 are read unchanged; 0.1.0 refuses schema-2 records. A folder store of 100,000 runs lists in under 2 s. Transfers back off when the server throttles (Set-GridTransferOption -AdaptiveConcurrency); uploads (capture, Import-GridArtifact, Copy-GridRun) go through the same engine and its process-wide limits as downloads, with part size and parts in flight from it; large downloads are hashed while they arrive and uploads as they are read to send; Save-GridArtifact and Import-GridArtifact move 32 files at once by default (were 8). Protect-GridRun and Unprotect-GridRun: a protected run is never removed (RunProtected), whatever -Force says. 0.1.1: a run name is taken once (RunExists) and an ended experiment is never rewritten (ExperimentExists); names outside the Basic Multilingual Plane are stored; the store and the module''s own folders are never imported or captured.'
        }
    }
}
