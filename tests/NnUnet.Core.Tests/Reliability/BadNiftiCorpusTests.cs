using NnUnet.Core.Imaging.Nifti;

namespace NnUnet.Core.Tests.Reliability;

/// <summary>Every broken file of tests/fixtures/bad/nifti gives an InvalidDataException naming the file and the problem.</summary>
public class BadNiftiCorpusTests
{
    [Theory]
    [InlineData("empty.nii.gz", "empty or truncated")]
    [InlineData("not_nifti.nii.gz", "not a NIfTI file")]
    [InlineData("truncated_gzip.nii.gz", "truncated")]
    [InlineData("truncated_header.nii", "truncated")]
    [InlineData("truncated_voxels.nii", "truncated")]
    [InlineData("corrupt_gzip.nii.gz", "gzip")]
    [InlineData("bad_gzip_trailer.nii.gz", "gzip")]
    [InlineData("wrong_magic.nii", "magic=")]
    [InlineData("sizeof_hdr_lies.nii", "sizeof_hdr=1234")]
    [InlineData("vox_offset_beyond_file.nii", "vox_offset 1000000")]
    [InlineData("vox_offset_beyond_file.nii.gz", "truncated")]
    [InlineData("dims_larger_than_data.nii", "truncated")]
    [InlineData("dims_larger_than_data.nii.gz", "more than a")]
    [InlineData("negative_dim.nii", "dim[1]=-4")]
    [InlineData("unsupported_datatype.nii", "datatype=32")]
    public void Broken_file_gives_a_clear_error_naming_the_file(string name, string problem)
    {
        string path = BadInput.Nifti(name);
        var before = BadInput.Snapshot(Path.GetDirectoryName(path)!);
        var ex = Record.Exception(() => NiftiReader.Read(path));
        Assert.NotNull(ex);
        BadInput.AssertNotACrash(ex);
        var invalid = Assert.IsType<InvalidDataException>(ex);
        Assert.StartsWith(path + ":", invalid.Message);
        Assert.Contains(problem, invalid.Message);
        BadInput.AssertUnchanged(before, Path.GetDirectoryName(path)!);
    }

    [Fact]
    public void Header_only_read_rejects_the_same_headers()
    {
        foreach (var name in new[] { "wrong_magic.nii", "sizeof_hdr_lies.nii", "negative_dim.nii", "unsupported_datatype.nii", "truncated_header.nii" })
        {
            string path = BadInput.Nifti(name);
            var ex = Assert.Throws<InvalidDataException>(() => NiftiReader.ReadHeader(path));
            Assert.StartsWith(path + ":", ex.Message);
        }
    }

    [Fact]
    public void Lying_gzip_dims_are_rejected_before_allocating()
    {
        string path = BadInput.Nifti("dims_larger_than_data.nii.gz");
        long before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Throws<InvalidDataException>(() => NiftiReader.Read(path));
        // 1000^3 int16 would be 2 GB; the check must come before the array
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 16 << 20, "the reader allocated for the claimed dims");
    }

    [Fact]
    public void Missing_file_is_FileNotFound_with_the_path()
    {
        string path = BadInput.Nifti("does_not_exist.nii.gz");
        var ex = Assert.Throws<FileNotFoundException>(() => NiftiReader.Read(path));
        Assert.Contains(path, ex.Message);
    }
}
