using Orleans.LIFL.Client.Training;
using Xunit;

namespace Orleans.LIFL.Client.Tests.Training;

/// <summary>Runs alone: while it sets LIFL_FASHION_MNIST, a concurrent default Load would read its small files.</summary>
[CollectionDefinition(DisableParallelization = true)]
public sealed class ProcessEnvironmentCollection;

/// <summary>Without a directory argument, Load reads from LIFL_FASHION_MNIST when it is set.</summary>
[Collection(typeof(ProcessEnvironmentCollection))]
public sealed class FashionMnistDirectoryVariableTests
{
    /// <summary>The variable's directory is used in place of Debian's.</summary>
    [Fact]
    public void Directory_variable_overrides_the_default_directory()
    {
        var directory = Directory.CreateTempSubdirectory("lifl-idx-").FullName;
        try
        {
            IdxTestFiles.WriteImages(Path.Combine(directory, "t10k-images-idx3-ubyte.gz"), count: 1);
            IdxTestFiles.WriteLabels(Path.Combine(directory, "t10k-labels-idx1-ubyte.gz"), [6]);
            Environment.SetEnvironmentVariable(FashionMnist.DirectoryVariable, directory);

            var data = FashionMnist.Load(FashionMnistSplit.Test);

            Assert.Equal(6, data.Labels.Single());
        }
        finally
        {
            Environment.SetEnvironmentVariable(FashionMnist.DirectoryVariable, null);
            Directory.Delete(directory, recursive: true);
        }

        Assert.Equal(10_000, FashionMnist.Load(FashionMnistSplit.Test).Count);
    }
}
