using System.Management.Automation;
using GridArtifacts.Model;

namespace GridArtifacts.Commands;

/// <summary>Shows the store calls use, and which setting chose it.</summary>
[Cmdlet(VerbsCommon.Get, "GridStore")]
[OutputType(typeof(GridStoreInfo))]
public sealed class GetGridStoreCommand : GridStoreCmdlet
{
    protected override void ProcessRecord() => WriteObject(ResolveStore());
}
