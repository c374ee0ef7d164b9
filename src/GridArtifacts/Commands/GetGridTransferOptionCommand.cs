using System.Management.Automation;
using GridArtifacts.Core.Transfer;
using GridArtifacts.Model;

namespace GridArtifacts.Commands;

/// <summary>Shows the process-wide limits of the transfer engine that every call and runspace shares.</summary>
[Cmdlet(VerbsCommon.Get, "GridTransferOption")]
[OutputType(typeof(TransferOptions))]
public sealed class GetGridTransferOptionCommand : GridCmdlet
{
    protected override void ProcessRecord() => WriteObject(TransferEngine.Shared.Options);
}
