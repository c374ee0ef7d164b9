using System.Management.Automation;
using GridArtifacts.Core.Transfer;
using GridArtifacts.Model;

namespace GridArtifacts.Commands;

/// <summary>
/// Sets process-wide limits of the transfer engine: requests in flight, a bandwidth cap, and the
/// memory large transfers may hold. They hold across runspaces and concurrent calls until changed.
/// </summary>
[Cmdlet(VerbsCommon.Set, "GridTransferOption", SupportsShouldProcess = true)]
[OutputType(typeof(TransferOptions))]
public sealed class SetGridTransferOptionCommand : GridCmdlet
{
    /// <summary>Requests in flight in the whole process.</summary>
    [Parameter]
    [ValidateRange(1, 1024)]
    public int MaxConcurrency { get; set; }

    /// <summary>Bytes per second for the whole process (for example 50MB); 0 removes the cap.</summary>
    [Parameter]
    [ValidateRange(0, long.MaxValue)]
    public long BandwidthLimit { get; set; }

    /// <summary>Bytes that transfers may hold in buffers for file and part data, process-wide (at most 200 MiB): the cap of the engine's memory pool.</summary>
    [Parameter]
    [ValidateRange(1L << 20, 200L << 20)]
    public long MemoryBudget { get; set; }

    /// <summary>Whether requests in flight back off while the server throttles (503 SlowDown, 429, refused connections) and climb back after; on by default.</summary>
    [Parameter]
    public bool AdaptiveConcurrency { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        var o = TransferEngine.Shared.Options;
        var bound = MyInvocation.BoundParameters;
        var next = o with
        {
            MaxConcurrency = bound.ContainsKey(nameof(MaxConcurrency)) ? MaxConcurrency : o.MaxConcurrency,
            BandwidthLimit = bound.ContainsKey(nameof(BandwidthLimit)) ? (BandwidthLimit == 0 ? null : BandwidthLimit) : o.BandwidthLimit,
            MemoryBudget = bound.ContainsKey(nameof(MemoryBudget)) ? MemoryBudget : o.MemoryBudget,
            AdaptiveConcurrency = bound.ContainsKey(nameof(AdaptiveConcurrency)) ? AdaptiveConcurrency : o.AdaptiveConcurrency,
        };
        if (ShouldProcess("GridArtifacts transfer engine", $"Set {next}"))
        {
            TransferEngine.Shared.Configure(next);
            if (PassThru) WriteObject(next);
        }
    }
}
