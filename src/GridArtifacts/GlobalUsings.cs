global using GridArtifacts.Core;
