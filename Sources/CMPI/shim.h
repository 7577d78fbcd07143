#include <mpi.h>

/* Open MPI defines its handles as macros over addresses of globals, which Swift cannot import. */
static inline MPI_Comm wsi_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype wsi_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype wsi_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype wsi_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype wsi_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Op wsi_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op wsi_mpi_max(void) { return MPI_MAX; }
static inline void *wsi_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Errhandler wsi_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline MPI_Status *wsi_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
