#include "eqntk/parallel/npy_writer.hpp"

#include <mpi.h>

#include <algorithm>
#include <string>
#include <vector>

#include "eqntk/parallel/collective.hpp"
#include "eqntk/error.hpp"
#include "eqntk/io/npy.hpp"

namespace eqntk::parallel {

void write_npy_collective(const std::filesystem::path& path, const DistMatrix& a) {
  const std::int64_t shape[2] = {a.rows(), a.cols()};
  const std::string header = io::npy_header(shape, io::DType::f8);
  const std::int64_t local = a.local_rows() * a.local_cols();
  // DistMatrix bounds every rank's local block by 2^31-1 elements (checked on the largest, identically on
  // every rank), so the int MPI counts and darray sizes below cannot overflow.
  // Local part in C order, as the darray type expects it.
  std::vector<double> buf(static_cast<std::size_t>(local));
  for (std::int64_t li = 0; li < a.local_rows(); ++li)
    for (std::int64_t lj = 0; lj < a.local_cols(); ++lj) buf[static_cast<std::size_t>(li * a.local_cols() + lj)] = a.local(li, lj);

  MPI_File fh = MPI_FILE_NULL;
  int rc = MPI_File_open(MPI_COMM_WORLD, path.c_str(), MPI_MODE_CREATE | MPI_MODE_WRONLY, MPI_INFO_NULL, &fh);
  collectively([&] {
    if (rc != MPI_SUCCESS) throw WriteError("cannot open '" + path.string() + "' for writing (MPI-IO)");
  });
  // Every rank goes through every collective call below whatever fails; failures are agreed afterwards.
  std::string failure;
  MPI_File_set_size(fh, 0);
  if (a.grid().rank() == 0 &&
      MPI_File_write_at(fh, 0, header.data(), static_cast<int>(header.size()), MPI_CHAR, MPI_STATUS_IGNORE) != MPI_SUCCESS)
    failure = "cannot write the header of '" + path.string() + "'";
  if (a.rows() > 0 && a.cols() > 0) {
    const int gsizes[2] = {static_cast<int>(a.rows()), static_cast<int>(a.cols())};
    const int distribs[2] = {MPI_DISTRIBUTE_CYCLIC, MPI_DISTRIBUTE_CYCLIC};
    const int dargs[2] = {static_cast<int>(a.block_size()), static_cast<int>(a.block_size())};
    const int psizes[2] = {a.grid().prows(), a.grid().pcols()};
    MPI_Datatype filetype = MPI_DATATYPE_NULL;
    MPI_Type_create_darray(a.grid().size(), a.grid().rank(), 2, gsizes, distribs, dargs, psizes, MPI_ORDER_C, MPI_DOUBLE,
                           &filetype);
    MPI_Type_commit(&filetype);
    MPI_File_set_view(fh, static_cast<MPI_Offset>(header.size()), MPI_DOUBLE, filetype, "native", MPI_INFO_NULL);
    // The local part may hold more than 2³¹ doubles: write it as local_rows elements of one local row
    // each (both counts are below 2³¹, as DistMatrix checked); the file offsets are MPI_Offset (64-bit).
    MPI_Datatype row = MPI_DATATYPE_NULL;
    MPI_Type_contiguous(static_cast<int>(std::max<std::int64_t>(a.local_cols(), 1)), MPI_DOUBLE, &row);
    MPI_Type_commit(&row);
    const int count = a.local_cols() > 0 ? static_cast<int>(a.local_rows()) : 0;
    if (MPI_File_write_all(fh, buf.data(), count, row, MPI_STATUS_IGNORE) != MPI_SUCCESS)
      failure = "cannot write '" + path.string() + "' (MPI-IO; disk full?)";
    MPI_Type_free(&row);
    MPI_Type_free(&filetype);
  }
  MPI_File_close(&fh);
  // ROMIO can report success for a short write (a file-size limit, some full file systems): the file's
  // size is the check that every byte arrived.
  if (failure.empty() && a.grid().rank() == 0) {
    const auto expected = static_cast<std::uintmax_t>(header.size()) + static_cast<std::uintmax_t>(a.rows() * a.cols()) * 8u;
    std::error_code ec;
    const std::uintmax_t size = std::filesystem::file_size(path, ec);
    if (ec || size != expected)
      failure = "cannot write '" + path.string() + "': it has " + (ec ? std::string("no size") : std::to_string(size)) +
                " of " + std::to_string(expected) + " bytes after MPI-IO (disk full or a file-size limit?)";
  }
  collectively([&] {
    if (!failure.empty()) throw WriteError(failure);
  });
}

}  // namespace eqntk::parallel
