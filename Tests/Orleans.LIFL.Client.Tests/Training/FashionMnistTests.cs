using Orleans.LIFL.Client.Training;
using Xunit;

namespace Orleans.LIFL.Client.Tests.Training;

/// <summary>Reading Fashion-MNIST's IDX files: the real data set, and the specific error for each way a file can be wrong.</summary>
public sealed class FashionMnistTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("lifl-idx-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>The installed files hold 60,000 and 10,000 images of 784 features in [0, 1], with every class equally often.</summary>
    [Theory]
    [InlineData(FashionMnistSplit.Train, 60_000)]
    [InlineData(FashionMnistSplit.Test, 10_000)]
    public void Installed_split_has_its_documented_size_and_ranges(FashionMnistSplit split, int count)
    {
        var data = FashionMnist.Load(split);

        Assert.Equal((count, 784, 10), (data.Count, data.FeatureCount, data.Classes));
        Assert.Equal(count * 784, data.Features.Length);
        Assert.Equal(0f, data.Features.Min());
        Assert.Equal(1f, data.Features.Max());
        var perClass = data.Labels.CountBy(label => label).OrderBy(pair => pair.Key).ToArray();
        Assert.Equal(Enumerable.Range(0, 10).Select(c => KeyValuePair.Create((byte)c, count / 10)), perClass);
        Assert.Equal(9, data.Labels[0]); // both splits start with an ankle boot
    }

    /// <summary>A split is decoded once per process: later and concurrent loads share the first one's instance.</summary>
    [Fact]
    public void Loads_of_a_split_share_one_instance()
    {
        WriteImages("t10k-images-idx3-ubyte.gz", count: 3);
        WriteLabels("t10k-labels-idx1-ubyte.gz", [0, 1, 2]);

        var loads = new LabeledImages[8];
        Parallel.For(0, loads.Length, i => loads[i] = FashionMnist.Load(FashionMnistSplit.Test, _directory));

        Assert.All(loads, load => Assert.Same(loads[0], load));
        Assert.Same(FashionMnist.Load(FashionMnistSplit.Test, _directory + "/./"), loads[0]);
    }

    /// <summary>Pixels are scaled by 1/255, in row-major order, and the labels are kept as they are.</summary>
    [Fact]
    public void Pixels_are_scaled_to_the_unit_interval()
    {
        WriteImages("train-images-idx3-ubyte.gz", count: 2, pixel: i => (byte)(i % 3 == 0 ? 255 : i % 3 == 1 ? 51 : 0));
        WriteLabels("train-labels-idx1-ubyte.gz", [7, 3]);

        var data = FashionMnist.Load(FashionMnistSplit.Train, _directory);

        Assert.Equal(new byte[] { 7, 3 }, data.Labels);
        Assert.Equal([1f, 0.2f, 0f, 1f], data.Features[..4]);
        Assert.Equal(0.2f, data.Features[^1]); // (2·784 − 1) % 3 == 1
    }

    /// <summary>A file with another file type's magic number is rejected by name, with the numbers found and expected.</summary>
    [Fact]
    public void Wrong_magic_number_is_reported_with_the_file()
    {
        WriteImages("t10k-images-idx3-ubyte.gz", count: 2, magic: 0x0801);
        WriteLabels("t10k-labels-idx1-ubyte.gz", [0, 1]);

        var error = Assert.Throws<InvalidDataException>(() => FashionMnist.Load(FashionMnistSplit.Test, _directory));

        Assert.Equal(
            $"'{Path.Combine(_directory, "t10k-images-idx3-ubyte.gz")}' is not a usable IDX file: its magic number is 0x00000801, not 0x00000803 (unsigned bytes in 3 dimensions).",
            error.Message);
    }

    /// <summary>A file shorter than its header says is reported as truncated, with how much is missing.</summary>
    [Fact]
    public void Truncated_file_is_reported_with_the_sizes()
    {
        WriteImages("t10k-images-idx3-ubyte.gz", count: 2);
        WriteLabels("t10k-labels-idx1-ubyte.gz", [0, 1, 2], declaredCount: 5);

        var error = Assert.Throws<InvalidDataException>(() => FashionMnist.Load(FashionMnistSplit.Test, _directory));

        Assert.Equal(
            $"'{Path.Combine(_directory, "t10k-labels-idx1-ubyte.gz")}' is not a usable IDX file: it is truncated: its header declares [5] = 5 values but only 3 follow.",
            error.Message);
    }

    /// <summary>The other malformations each get their own message naming the file.</summary>
    [Theory]
    [InlineData("header", "it ends after 8 bytes, inside the 16-byte header")]
    [InlineData("trailing", "it has data after the 1,568 values its header declares")]
    [InlineData("not gzip", "it is not valid gzip")]
    [InlineData("14x14", "holds images of 14×14 pixels, not 28×28")]
    public void Malformed_image_file_is_reported_with_its_problem(string malformation, string problem)
    {
        var path = Path.Combine(_directory, "train-images-idx3-ubyte.gz");
        switch (malformation)
        {
            case "header":
                IdxTestFiles.WriteGzip(path, [0, 0, 8, 3, 0, 0, 0, 2]);
                break;
            case "trailing":
                WriteImages("train-images-idx3-ubyte.gz", count: 2, extraBytes: 1);
                break;
            case "not gzip":
                File.WriteAllBytes(path, [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28]);
                break;
            case "14x14":
                WriteImages("train-images-idx3-ubyte.gz", count: 2, side: 14);
                break;
        }

        WriteLabels("train-labels-idx1-ubyte.gz", [0, 1]);

        var error = Assert.Throws<InvalidDataException>(() => FashionMnist.Load(FashionMnistSplit.Train, _directory));

        Assert.StartsWith($"'{path}' ", error.Message);
        Assert.Contains(problem, error.Message);
    }

    /// <summary>Images and labels must agree in number, and labels must be classes 0 to 9.</summary>
    [Theory]
    [InlineData(new byte[] { 0, 1, 2 }, "has 3 labels but")]
    [InlineData(new byte[] { 0, 10 }, "gives example 1 the label 10; Fashion-MNIST's labels are 0 to 9.")]
    public void Labels_that_do_not_fit_the_images_are_rejected(byte[] labels, string problem)
    {
        WriteImages("train-images-idx3-ubyte.gz", count: 2);
        WriteLabels("train-labels-idx1-ubyte.gz", labels);

        var error = Assert.Throws<InvalidDataException>(() => FashionMnist.Load(FashionMnistSplit.Train, _directory));

        Assert.StartsWith($"'{Path.Combine(_directory, "train-labels-idx1-ubyte.gz")}' ", error.Message);
        Assert.Contains(problem, error.Message);
    }

    /// <summary>Missing files say how to get them; the failure is not cached, so installing them afterwards works.</summary>
    [Fact]
    public void Missing_files_point_at_the_debian_package_and_are_not_cached()
    {
        WriteImages("t10k-images-idx3-ubyte.gz", count: 1);

        var error = Assert.Throws<FileNotFoundException>(() => FashionMnist.Load(FashionMnistSplit.Test, _directory));

        Assert.Equal(Path.Combine(_directory, "t10k-labels-idx1-ubyte.gz"), error.FileName);
        Assert.Contains("Install Debian's dataset-fashion-mnist package", error.Message);
        Assert.Contains("LIFL_FASHION_MNIST", error.Message);

        WriteLabels("t10k-labels-idx1-ubyte.gz", [4]);
        Assert.Equal(4, FashionMnist.Load(FashionMnistSplit.Test, _directory).Labels.Single());
    }

    /// <summary>A subset copies the chosen examples' features and labels, in the order given.</summary>
    [Fact]
    public void Subset_copies_the_chosen_examples_in_order()
    {
        var data = new LabeledImages([.. Enumerable.Range(0, 3 * 2).Select(i => (float)i)], [0, 1, 2], featureCount: 2, classes: 3);

        var subset = data.Subset([2, 0, 2]);

        Assert.Equal([4f, 5f, 0f, 1f, 4f, 5f], subset.Features);
        Assert.Equal(new byte[] { 2, 0, 2 }, subset.Labels);
        Assert.Equal((3, 2, 3), (subset.Count, subset.FeatureCount, subset.Classes));
        Assert.Throws<ArgumentOutOfRangeException>(() => data.Subset([3]));
    }

    private void WriteImages(string name, int count, Func<int, byte>? pixel = null, uint magic = 0x0803, int side = 28, int extraBytes = 0) =>
        IdxTestFiles.WriteImages(Path.Combine(_directory, name), count, pixel, magic, side, extraBytes);

    private void WriteLabels(string name, byte[] labels, int? declaredCount = null) =>
        IdxTestFiles.WriteLabels(Path.Combine(_directory, name), labels, declaredCount);
}
