# zfs on-disk parsers (seeds cut from pools made by zfs-fuse; see src/zfs/fixtures).
foreach(f nvlist label zap decompress dnode)
  dfly_fuzz(zfs_${f}_fuzz zfs_${f}_fuzz.cpp dfly_zfs_format)
endforeach()
